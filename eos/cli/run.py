"""`eos run APP` and `eos dlq replay`: an application on the transactional engine."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, exit_with, fail, setup_logging
from eos.cli.preflight import reachable
from eos.cli.settings import (
    ENV_PREFIX,
    engine_options,
    engine_settings,
    settings_error,
    unreadable,
)
from eos.config import DEFAULT_METRICS_PORT, EngineSettings
from eos.engine import runner
from eos.engine.app import App
from eos.engine.dlq import replay_failed_topic, replay_transform
from eos.errors import ConfigurationError

__all__ = ["KNOWN_APPS", "dlq", "resolve_app", "run"]

KNOWN_APPS = {
    "events": "eos.examples.events:build",
    "copy": "eos.examples.copy:build",
    "ledger": "eos.ledger.app:build",
}

AppFactory = Callable[[EngineSettings], App]


@click.command("run", context_settings=CONTEXT_SETTINGS)
@click.argument("app", metavar="APP")
@click.option(
    "--until-caught-up",
    is_flag=True,
    help="Stop once every assigned partition is fully processed.",
)
@click.option(
    "--stats-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the run's totals, busy time and CPU time here on exit.",
)
@engine_options()
def run(app: str, until_caught_up: bool, stats_json: Path | None, **given: str | None) -> None:
    """Run an application on the transactional engine.

    APP is one of the known apps (events, ledger) or module:attr, an App or a function
    that builds the App from the settings. Settings come from the flags, the EOS_<NAME>
    environment variables or a .env file, in that order.
    """
    settings = engine_settings(given)
    setup_logging(settings.secrets())
    if settings.metrics_port is None:  # on unless turned off (0)
        settings = settings.model_copy(update={"metrics_port": DEFAULT_METRICS_PORT})
    try:
        factory = resolve_app(app)
    except ConfigurationError as exc:
        fail(f"eos run: {exc}", 2)
    reachable(settings)  # after what can be told without a cluster
    _run("eos run", factory, settings, until_caught_up=until_caught_up, stats_json=stats_json)


@click.group("dlq", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS)
def dlq() -> None:
    """Dead-letter topic tools."""


@dlq.command("replay", context_settings=CONTEXT_SETTINGS)
@engine_options()
def replay(**given: str | None) -> None:
    """Re-publish dead-lettered records to their original topics, exactly once, then stop.

    Reads EOS_DLQ_TOPIC as group <group>-dlq-replay; records it cannot re-publish go to
    <dlq>.replay-failed.
    """
    base = engine_settings(given)
    setup_logging(base.secrets())
    reachable(base, "eos dlq replay")
    settings = engine_settings(
        given,
        group_id=f"{base.group_id}-dlq-replay",
        input_topics=[base.dlq_topic],
        dlq_topic=replay_failed_topic(base.dlq_topic),
        transactional_id_prefix=f"{base.transactional_id_prefix}-dlq-replay",
    )
    app = App("dlq-replay", replay_transform, {base.dlq_topic: None}, {})
    _run("eos dlq replay", app, settings, until_caught_up=True, stats_json=None)


def resolve_app(name: str) -> App | AppFactory:
    """What `name` stands for: a known app's factory, or `module:attr`, an App or a
    factory that builds one. The current directory is importable, as for `python -m`."""
    target = KNOWN_APPS.get(name, name)
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(
            f"app {name!r} is neither a known app ({', '.join(KNOWN_APPS)}) nor module:factory"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"app {name!r}: cannot import {module_name}: {exc}") from exc
    found = getattr(module, attr, None)
    if isinstance(found, App):
        return found
    if not callable(found):
        raise ConfigurationError(f"app {name!r}: {module_name} has no App or factory {attr!r}")
    factory: AppFactory = found
    return factory


def _run(
    command: str,
    app: App | AppFactory,
    settings: EngineSettings,
    *,
    until_caught_up: bool,
    stats_json: Path | None,
) -> NoReturn:
    try:
        code = runner.run(app, settings, until_caught_up=until_caught_up, stats_json=stats_json)
    except ValidationError as exc:  # an app's own settings, read by its factory
        fail(settings_error(exc), 2)
    except SettingsError as exc:
        fail(unreadable(exc, ENV_PREFIX), 2)
    except (ConfigurationError, ValueError, FileNotFoundError) as exc:
        fail(f"{command}: {exc}", 2)
    exit_with(code)
