"""The `eos` command."""

from __future__ import annotations

import argparse
import sys

from eos.engine import cli as engine_cli
from eos.ledger import cli as ledger_cli
from eos.stack import cli as stack_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eos", description="Exactly-once consume-transform-produce on Apache Kafka."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    stack_cli.add_parser(sub)
    engine_cli.add_parsers(sub)
    ledger_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "stack":
        return stack_cli.run(args)
    if args.command in ledger_cli.COMMANDS:
        return ledger_cli.run(args)
    return engine_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
