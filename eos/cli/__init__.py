"""The `eos` command. Every argument of every command is parsed in this package.

Shell completion comes with click: `eval "$(_EOS_COMPLETE=bash_source eos)"` (zsh_source,
fish_source for the other shells).
"""

from __future__ import annotations

import logging
import os

import click

from eos.cli.bench import bench, chaos, demo
from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, choose_logging
from eos.cli.envcheck import unknown_variables
from eos.cli.lag import lag_command
from eos.cli.ledger import ledger, produce, verify
from eos.cli.pay import pay_command
from eos.cli.run import dlq, run
from eos.cli.schemas import schemas
from eos.cli.stack import stack
from eos.logs import FORMATS, LEVELS

__all__ = ["cli", "main"]


@click.group("eos", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default=None,
    envvar="EOS_LOG_LEVEL",
    show_envvar=True,
    help="[default: info for eos run and eos dlq replay, warning for the other commands]",
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS, case_sensitive=False),
    default="text",
    envvar="EOS_LOG_FORMAT",
    show_default=True,
    show_envvar=True,
    help="json: one JSON object per line (time, level, logger, message).",
)
def cli(log_level: str | None, log_format: str) -> None:
    """Exactly-once consume-transform-produce on Apache Kafka."""
    choose_logging(log_level.lower() if log_level else None, log_format.lower())
    for line in unknown_variables(os.environ):
        logging.getLogger("eos").warning(line)


for _command in (stack, run, dlq, ledger, produce, verify, schemas, bench, demo, chaos):
    cli.add_command(_command)
cli.add_command(pay_command)
cli.add_command(lag_command)


def main(argv: list[str] | None = None) -> int:
    """Run `eos` with `argv` (default: the process's arguments); returns the exit code."""
    try:
        result = cli.main(args=argv, prog_name="eos", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return result if isinstance(result, int) else 0
