"""`eos schemas check | register`: the local schemas/ against the registry."""

from __future__ import annotations

import click

from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, exit_with
from eos.cli.settings import engine_options, engine_settings, ledger_settings
from eos.kafka.clients import make_registry
from eos.ledger.setup import contracts
from eos.serde import compat

__all__ = ["schemas"]


@click.group("schemas", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
def schemas() -> None:
    """Compare schemas/ with the registry."""


@schemas.command("check", context_settings=CONTEXT_SETTINGS)
@engine_options("schema_registry_url")
def check(**given: str | None) -> None:
    """Fail when a local schema is incompatible with the registry."""
    engine = engine_settings(given)
    results = compat.check(make_registry(engine), contracts(ledger_settings()))
    for r in results:
        print(f"{r.subject:<40} {r.status:<13} {r.detail}")
    bad = [r for r in results if not r.ok]
    print(f"{len(bad)} incompatible schema(s)" if bad else "all schemas compatible")
    exit_with(1 if bad else 0)


@schemas.command("register", context_settings=CONTEXT_SETTINGS)
@engine_options("schema_registry_url")
def register(**given: str | None) -> None:
    """Register the local schemas with BACKWARD compatibility."""
    engine = engine_settings(given)
    for subject, schema_id in compat.register(
        make_registry(engine), contracts(ledger_settings())
    ).items():
        print(f"registered {subject} (id {schema_id}, BACKWARD)")
