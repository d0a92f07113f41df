"""`eos schemas check | register [APP]`: an application's contracts against the registry.

Schemas are registered here (or by `eos ledger setup`), by CI or an operator, never by
the processors, which only look them up.
"""

from __future__ import annotations

import click

from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, exit_with, fail
from eos.cli.preflight import reachable
from eos.cli.settings import engine_options, engine_settings, ledger_settings
from eos.config import EngineSettings
from eos.engine.app import App, app_subjects
from eos.errors import ConfigurationError
from eos.kafka.clients import make_registry
from eos.ledger.setup import subjects as ledger_subjects
from eos.serde import compat
from eos.serde.avro import AvroContract

__all__ = ["schemas"]


@click.group("schemas", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
def schemas() -> None:
    """An application's schemas against the registry."""


@schemas.command("check", context_settings=CONTEXT_SETTINGS)
@click.argument("app", default="ledger", metavar="[APP]")
@engine_options("bootstrap_servers", "schema_registry_url", "input_topics", "output_topic")
def check(app: str, **given: str | None) -> None:
    """Fail when a schema of APP is incompatible with what the registry has.

    APP: ledger (the default: schemas/ledger), events, or module:attr as for `eos run`.
    """
    engine = engine_settings(given)
    reachable(engine, "eos schemas check", cluster=False)
    results = compat.check_subjects(make_registry(engine), _subjects(app, engine))
    for r in results:
        print(f"{r.subject:<40} {r.status:<13} {r.detail}")
    bad = [r for r in results if not r.ok]
    print(f"{len(bad)} incompatible schema(s)" if bad else "all schemas compatible")
    exit_with(1 if bad else 0)


@schemas.command("register", context_settings=CONTEXT_SETTINGS)
@click.argument("app", default="ledger", metavar="[APP]")
@engine_options("bootstrap_servers", "schema_registry_url", "input_topics", "output_topic")
def register(app: str, **given: str | None) -> None:
    """Register every schema APP's processors look up, with BACKWARD compatibility.

    APP: ledger (the default: schemas/ledger), events, or module:attr as for `eos run`.
    """
    engine = engine_settings(given)
    reachable(engine, "eos schemas register", cluster=False)
    registered = compat.register_subjects(make_registry(engine), _subjects(app, engine))
    for subject, schema_id in registered.items():
        print(f"registered {subject} (id {schema_id}, BACKWARD)")


def _subjects(app: str, engine: EngineSettings) -> dict[str, AvroContract]:
    if app == "ledger":
        return ledger_subjects(ledger_settings())
    from eos.cli.run import resolve_app

    try:
        found = resolve_app(app)
        built = found if isinstance(found, App) else found(engine)
    except ConfigurationError as exc:
        fail(f"eos schemas: {exc}", 2)
    return app_subjects(built)
