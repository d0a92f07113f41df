"""What every `eos` command shares: the group class that suggests commands, how a
command fails, and how it logs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, NoReturn

import click

from eos.logs import configure

__all__ = [
    "CONTEXT_SETTINGS",
    "SuggestingGroup",
    "choose_logging",
    "exit_with",
    "fail",
    "setup_logging",
]

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


_chosen: dict[str, str | None] = {"level": None, "format": "text"}


def choose_logging(level: str | None, fmt: str) -> None:
    """Log at `level` (None: WARNING, until a service asks for INFO) in `fmt` from now on
    (the `eos` group's --log-level/--log-format). A one-shot command's output stays its
    own report; `eos run` logs what it does."""
    _chosen.update(level=level, format=fmt)
    configure(level or "warning", fmt)


def setup_logging(secrets: Iterable[str] = ()) -> None:
    """A service's logging: as chosen (INFO unless told otherwise), `secrets` taken out
    of every line besides URL credentials."""
    configure(_chosen["level"] or "info", _chosen["format"] or "text", secrets=secrets)
