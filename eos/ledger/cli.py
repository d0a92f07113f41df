"""Ledger commands: `eos ledger setup`, `eos produce payments`, `eos verify ledger`,
`eos schemas check|register`."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from eos.engine.cli import add_setting_flags, settings_error, settings_from
from eos.kafka.clients import make_registry
from eos.ledger.generator import LoadSpec, produce_payments
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import contracts, setup
from eos.serde import compat


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="ledger administration")
    actions = ledger.add_subparsers(dest="ledger_action", required=True)
    setup_p = actions.add_parser("setup", help="create the ledger's topics, register schemas")
    setup_p.add_argument("--partitions", type=int, default=6)
    setup_p.add_argument("--replication", type=int, default=1)
    add_setting_flags(setup_p)

    produce = sub.add_parser("produce", help="load generators")
    what = produce.add_subparsers(dest="produce_what", required=True)
    payments = what.add_parser("payments", help="realistic payments for the ledger")
    payments.add_argument("--count", type=int, required=True)
    payments.add_argument("--accounts", type=int, default=200)
    payments.add_argument("--currencies", default="EUR,USD,GBP")
    payments.add_argument("--duplicates", type=float, default=0.02, help="share of records")
    payments.add_argument("--invalid", type=float, default=0.03, help="share of records")
    payments.add_argument(
        "--garbage", type=float, default=0.001, help="share of undecodable records"
    )
    payments.add_argument("--reply-to", default=None, help="topic for outcomes")
    payments.add_argument("--reply-share", type=float, default=0.0)
    payments.add_argument("--rate", type=float, default=0.0, help="records/s; 0: unlimited")
    payments.add_argument("--seed", type=int, default=None)
    add_setting_flags(payments)

    verify = sub.add_parser("verify", help="check the outputs' invariants")
    verify_what = verify.add_subparsers(dest="verify_what", required=True)
    add_setting_flags(verify_what.add_parser("ledger", help="verify the ledger"))

    schemas = sub.add_parser("schemas", help="compare schemas/ with the registry")
    schema_actions = schemas.add_subparsers(dest="schemas_action", required=True)
    add_setting_flags(
        schema_actions.add_parser(
            "check", help="fail when a local schema is incompatible with the registry"
        )
    )
    add_setting_flags(
        schema_actions.add_parser(
            "register", help="register the local schemas with BACKWARD compatibility"
        )
    )


COMMANDS = ("ledger", "produce", "verify", "schemas")


def run(args: argparse.Namespace) -> int:
    try:
        engine = settings_from(args)
        ledger = LedgerSettings()
    except ValidationError as exc:
        print(settings_error(exc), file=sys.stderr)
        return 2
    if args.command == "ledger":
        setup(engine, args.partitions, args.replication)
        return 0
    if args.command == "produce":
        spec = LoadSpec(
            count=args.count,
            accounts=args.accounts,
            currencies=tuple(c.strip() for c in args.currencies.split(",") if c.strip()),
            duplicates=args.duplicates,
            invalid=args.invalid,
            garbage=args.garbage,
            reply_to=args.reply_to,
            reply_share=args.reply_share,
            rate=args.rate,
            seed=args.seed,
        )
        print(produce_payments(engine, ledger, spec).line())
        return 0
    if args.command == "verify":
        from eos.ledger.verify import run_verify

        return run_verify(
            engine.bootstrap_servers, engine.schema_registry_url, ledger, engine.dlq_topic
        )
    registry = make_registry(engine)
    if args.schemas_action == "register":
        for subject, schema_id in compat.register(registry, contracts(ledger)).items():
            print(f"registered {subject} (id {schema_id}, BACKWARD)")
        return 0
    results = compat.check(registry, contracts(ledger))
    for r in results:
        print(f"{r.subject:<40} {r.status:<13} {r.detail}")
    bad = [r for r in results if not r.ok]
    print(f"{len(bad)} incompatible schema(s)" if bad else "all schemas compatible")
    return 1 if bad else 0
