"""What every `eos` command shares: the group class that suggests commands, how a
command fails, and the log format."""

from __future__ import annotations

import difflib
import logging
import sys
from typing import Any, NoReturn

import click

__all__ = ["CONTEXT_SETTINGS", "SuggestingGroup", "exit_with", "fail", "setup_logging"]

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


class SuggestingGroup(click.Group):
    """A group that answers a mistyped subcommand with the closest one it has."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if (
            not ctx.resilient_parsing
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
        ):
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {close[0]!r}?")
        return super().resolve_command(ctx, args)


def exit_with(code: int) -> NoReturn:
    """End the command with exit code `code`."""
    raise click.exceptions.Exit(code)


def fail(message: str, code: int, *, err: bool = True) -> NoReturn:
    """Print `message` (to stderr unless `err` is False) and exit with `code`."""
    click.echo(message, err=err)
    exit_with(code)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
