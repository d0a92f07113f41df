"""The ledger's commands: `eos ledger setup`, `eos produce payments`, `eos verify ledger`."""

from __future__ import annotations

import logging

import click
from confluent_kafka import KafkaException

from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, exit_with, fail
from eos.cli.preflight import reachable
from eos.cli.progress import ReadProgressLine
from eos.cli.settings import CONNECTION, engine_options, engine_settings, ledger_settings
from eos.engine.redact import Redactor
from eos.errors import ConfigurationError, EosError
from eos.kafka.clients import make_registry
from eos.kafka.errors import kafka_error
from eos.kafka.reader import Refused, reader_config
from eos.ledger.generator import LoadSpec, produce_payments
from eos.ledger.setup import setup

__all__ = ["ledger", "produce", "verify"]


@click.group("ledger", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
def ledger() -> None:
    """Ledger administration."""


@ledger.command("setup", context_settings=CONTEXT_SETTINGS)
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option(
    "--replication",
    type=int,
    default=None,
    help="Replication factor of new topics (min.insync.replicas: one less, at least 1). "
    "[default: min(3, the cluster's brokers)]",
)
@engine_options(*CONNECTION, "dlq_topic")
def setup_command(partitions: int, replication: int | None, **given: str | None) -> None:
    """Create the ledger's topics, register its schemas (BACKWARD compatibility)."""
    engine = engine_settings(given)
    ledger_settings()
    reachable(engine, "eos ledger setup")
    try:
        setup(engine, partitions, replication)
    except EosError as exc:
        fail(f"eos ledger setup: {exc}", 2 if isinstance(exc, ConfigurationError) else 1)


@click.group("produce", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
def produce() -> None:
    """Load generators."""


@produce.command("payments", context_settings=CONTEXT_SETTINGS)
@click.option("--count", type=int, required=True)
@click.option("--accounts", type=int, default=200, show_default=True)
@click.option("--currencies", default="EUR,USD,GBP", show_default=True)
@click.option("--duplicates", type=float, default=0.02, show_default=True, help="Share of records.")
@click.option("--invalid", type=float, default=0.03, show_default=True, help="Share of records.")
@click.option(
    "--garbage",
    type=float,
    default=0.001,
    show_default=True,
    help="Share of undecodable records.",
)
@click.option("--reply-to", default=None, help="Topic for outcomes.")
@click.option("--reply-share", type=float, default=0.0, show_default=True)
@click.option("--rate", type=float, default=0.0, show_default=True, help="Records/s; 0: unlimited.")
@click.option("--seed", type=int, default=None)
@engine_options(*CONNECTION)
def payments(
    count: int,
    accounts: int,
    currencies: str,
    duplicates: float,
    invalid: float,
    garbage: float,
    reply_to: str | None,
    reply_share: float,
    rate: float,
    seed: int | None,
    **given: str | None,
) -> None:
    """Realistic payments for the ledger."""
    engine = engine_settings(given)
    reachable(engine, "eos produce payments")
    spec = LoadSpec(
        count=count,
        accounts=accounts,
        currencies=tuple(c.strip() for c in currencies.split(",") if c.strip()),
        duplicates=duplicates,
        invalid=invalid,
        garbage=garbage,
        reply_to=reply_to,
        reply_share=reply_share,
        rate=rate,
        seed=seed,
    )
    try:
        report = produce_payments(engine, ledger_settings(), spec)
    except EosError as exc:
        fail(f"eos produce payments: {exc}", 2 if isinstance(exc, ConfigurationError) else 1)
    if report.interrupted:
        fail(f"eos produce payments: {report.interrupted_line(count)}", 130)
    print(report.line())


@click.group("verify", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
def verify() -> None:
    """Check the outputs' invariants."""


SECURITY_HINT = (
    "check EOS_SECURITY_PROTOCOL, EOS_SASL_MECHANISM, EOS_SASL_USERNAME, EOS_SASL_PASSWORD "
    "and EOS_SSL_*"
)


@verify.command("ledger", context_settings=CONTEXT_SETTINGS)
@engine_options(*CONNECTION, "dlq_topic")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def verify_ledger(as_json: bool, **given: str | None) -> None:
    """Verify the ledger: exit 0 when every invariant holds, 1 on a violation, 2 when the
    topics cannot be read to their end (an open transaction, an unreachable cluster,
    refused credentials).

    Connects as the processor does: its security settings (EOS_SECURITY_PROTOCOL,
    EOS_SASL_*, EOS_SSL_*), client overrides and registry credentials apply."""
    from eos.ledger.verify import verify as verify_books

    engine = engine_settings(given)
    books = ledger_settings()
    redact = Redactor(engine.secrets())
    # librdkafka's own lines repeat, many times over, what the one-line error below says.
    logging.getLogger("eos.kafka.reader").setLevel(logging.CRITICAL)
    try:
        report = verify_books(
            engine.bootstrap_servers,
            engine.schema_registry_url,
            books,
            engine.dlq_topic,
            client_config=reader_config(engine),
            registry=make_registry(engine),
            progress=ReadProgressLine(),
        )
    except Refused as exc:
        fail(redact(f"verification could not complete: {_one_line(exc)}; {SECURITY_HINT}"), 2)
    except (TimeoutError, RuntimeError, KafkaException, EosError) as exc:
        fail(redact(f"verification could not complete: {_one_line(exc)}"), 2)
    print(report.to_json() if as_json else report.render())
    exit_with(0 if report.ok else 1)


def _one_line(exc: Exception) -> str:
    text = kafka_error(exc).str() if isinstance(exc, KafkaException) else str(exc)
    return " ".join(text.split())
