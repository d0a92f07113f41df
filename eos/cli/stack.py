"""`eos stack up | down | status | logs`: a local Kafka (KRaft) and schema registry."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import click

from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, exit_with, fail
from eos.stack.artifacts import ToolMissing
from eos.stack.kafka import SaslPlain, SecureListener
from eos.stack.layout import StackLayout
from eos.stack.stack import Stack, StackError, StackSpec
from eos.stack.tls import TlsFiles

__all__ = ["stack"]

_PATH = click.Path(file_okay=False, path_type=Path)
# From the environment only: a password on the command line shows in `ps` and the history.
SASL_PASSWORD_ENV = "EOS_STACK_SASL_PASSWORD"


@click.group("stack", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--home",
    type=_PATH,
    default=None,
    help="Artifact cache (default $EOS_STACK_HOME or ~/.cache/eos/stack).",
)
@click.option(
    "--run-dir",
    type=_PATH,
    default=None,
    help="This stack's data, logs and pid files (default <home>/run).",
)
@click.pass_context
def stack(ctx: click.Context, home: Path | None, run_dir: Path | None) -> None:
    """Run a local Kafka (KRaft) + schema registry."""
    ctx.obj = StackLayout.create(home, run_dir)


@stack.command("up", context_settings=CONTEXT_SETTINGS)
@click.option("--brokers", type=click.Choice(["1", "3"]), default="1", show_default=True)
@click.option(
    "--kafka-port",
    type=int,
    default=9092,
    show_default=True,
    help="First broker's port; node i listens on port+2(i-1), controller +1.",
)
@click.option("--registry-port", type=int, default=8081, show_default=True)
@click.option("--no-registry", is_flag=True, help="Start Kafka only.")
@click.option(
    "--sasl-port",
    type=int,
    default=None,
    help="Also listen with SASL_PLAINTEXT (mechanism PLAIN) on this port (node i: port+i-1), "
    f"admitting --sasl-user with the password in ${SASL_PASSWORD_ENV}.",
)
@click.option("--sasl-user", default="eos", show_default=True, help="The SASL listener's user.")
@click.option(
    "--secure",
    is_flag=True,
    help="Also listen with SASL_SSL (SCRAM-SHA-512, a CA and certificate made into the run "
    "folder) on --secure-port, admitting --sasl-user with the password in "
    f"${SASL_PASSWORD_ENV} (made up and kept when unset); prints the client settings.",
)
@click.option(
    "--secure-port",
    type=int,
    default=9192,
    show_default=True,
    help="The SASL_SSL listener's port (node i: port+i-1).",
)
@click.option(
    "--timeout", type=float, default=180.0, show_default=True, help="Seconds to wait for readiness."
)
@click.pass_obj
def up(
    layout: StackLayout,
    brokers: str,
    kafka_port: int,
    registry_port: int,
    no_registry: bool,
    sasl_port: int | None,
    sasl_user: str,
    secure: bool,
    secure_port: int,
    timeout: float,
) -> None:
    """Start the stack and wait until it answers."""
    sasl = _sasl(sasl_port, sasl_user) if sasl_port is not None else None
    listener = _secure(layout, secure_port, sasl_user) if secure else None
    spec = StackSpec(int(brokers), kafka_port, registry_port, not no_registry, sasl, listener)
    _act("up", lambda: Stack(layout).up(spec, timeout=timeout))


def _sasl(port: int, user: str) -> SaslPlain:
    password = os.environ.get(SASL_PASSWORD_ENV, "")
    if not password:
        fail(f"eos stack up: --sasl-port needs the user's password in ${SASL_PASSWORD_ENV}", 2)
    try:
        return SaslPlain(port, user, password)
    except ValueError as exc:
        fail(f"eos stack up: {exc}", 2)


def _secure(layout: StackLayout, port: int, user: str) -> SecureListener:
    """The SASL_SSL listener: the password from the environment, else the one this run
    folder's stack had, else a new random one."""
    saved = Stack(layout).spec.secure
    password = os.environ.get(SASL_PASSWORD_ENV, "") or (
        saved.password if saved and saved.user == user else secrets.token_urlsafe(18)
    )
    keystore = TlsFiles(layout.run / "data" / "tls").server_keystore
    try:
        return SecureListener(port, user, password, str(keystore.resolve()))
    except ValueError as exc:
        fail(f"eos stack up: {exc}", 2)


@stack.command("down", context_settings=CONTEXT_SETTINGS)
@click.option("--wipe", is_flag=True, help="Also delete the topics' data.")
@click.pass_obj
def down(layout: StackLayout, wipe: bool) -> None:
    """Stop what `up` started."""
    _act("down", lambda: Stack(layout).down(wipe=wipe))


@stack.command("status", context_settings=CONTEXT_SETTINGS)
@click.pass_obj
def status(layout: StackLayout) -> None:
    """Show each process and whether it answers (exit 3 when one does not)."""
    try:
        code = _print_status(Stack(layout))
    except (StackError, ToolMissing, RuntimeError) as exc:
        fail(f"eos stack status: {exc}", 1, err=False)
    exit_with(code)


@stack.command("logs", context_settings=CONTEXT_SETTINGS)
@click.argument("name", required=False)
@click.option("-n", "--lines", type=int, default=50, show_default=True)
@click.pass_obj
def logs(layout: StackLayout, name: str | None, lines: int) -> None:
    """Print the end of the log files (NAME: kafka-1, kafka-2, kafka-3 or registry)."""
    _act("logs", lambda: print(Stack(layout).logs(name, lines)))


def _act(action: str, do: Callable[[], object]) -> None:
    try:
        do()
    except (StackError, ToolMissing, RuntimeError) as exc:
        fail(f"eos stack {action}: {exc}", 1, err=False)


def _print_status(stack: Stack) -> int:
    rows = stack.status()
    for row in rows:
        if row.pid is None:
            state = "stale pid file (process gone)" if row.stale_pid_file else "stopped"
        else:
            state = f"running pid {row.pid}, " + ("answering" if row.answering else "NOT answering")
        print(f"{row.name:<10} 127.0.0.1:{row.port:<6} {state}")
    if all(r.answering for r in rows):
        print(f"bootstrap servers: {stack.spec.bootstrap_servers}")
        if stack.spec.sasl:
            print(f"SASL_PLAINTEXT:    {stack.spec.sasl_bootstrap_servers}")
        if stack.spec.secure:
            print(f"SASL_SSL:          {stack.spec.secure_bootstrap_servers}")
        if stack.spec.registry_url:
            print(f"schema registry:   {stack.spec.registry_url}")
        return 0
    return 3
