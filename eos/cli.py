"""The `eos` command."""

from __future__ import annotations

import argparse
import sys

from eos.stack import cli as stack_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stack_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "stack":
        return stack_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
