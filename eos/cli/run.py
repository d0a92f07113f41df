"""`eos run APP` and `eos dlq replay`: an application on the transactional engine."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
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
from eos.ops.supervisor import Supervisor, worker_flags
from eos.tools.commands import eos_command

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
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes under one supervisor, each its own group member (use one a core).",
)
@engine_options()
def run(
    app: str, until_caught_up: bool, stats_json: Path | None, processes: int, **given: str | None
) -> None:
    """Run an application on the transactional engine.

    APP is one of the known apps (events, copy, ledger) or module:attr, an App or a
    function that builds the App from the settings. Settings come from the flags, the
    EOS_<NAME> environment variables or a .env file, in that order. With --processes N,
    N workers run it (eos/ops/supervisor.py): SIGTERM stops them all, a crashed one is
    restarted, worker i serves metrics on the metrics port + i - 1.
    """
    settings = engine_settings(given)
    setup_logging(settings.secrets())
    if settings.metrics_port is None:  # on unless turned off (0)
        settings = settings.model_copy(update={"metrics_port": DEFAULT_METRICS_PORT})
    factory = resolve_or_fail(app)
    reachable(settings)  # after what can be told without a cluster
    if processes > 1:
        sys.exit(supervise(app, processes, until_caught_up, stats_json, given, settings))
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


def resolve_or_fail(app: str) -> App | AppFactory:
    try:
        return resolve_app(app)
    except ConfigurationError as exc:
        fail(f"eos run: {exc}", 2)


def supervise(
    app: str,
    processes: int,
    until_caught_up: bool,
    stats_json: Path | None,
    given: Mapping[str, str | None],
    settings: EngineSettings,
) -> int:
    """N workers of `eos run APP` with the same flags; their stats summed into
    `stats_json` (busy time: the longest; CPU time: the sum)."""
    base = eos_command("run", app, *(["--until-caught-up"] * until_caught_up))
    # an instance id given by flag or environment: each worker gets its own from it
    named = (
        {"instance_id": settings.instance_id} if "instance_id" in settings.model_fields_set else {}
    )
    commands = []
    for i in range(1, processes + 1):
        stats = ["--stats-json", f"{stats_json}.w{i}"] if stats_json else []
        commands.append(
            base + worker_flags({**given, **named}, i, settings.metrics_port or 0) + stats
        )
    timeout = settings.shutdown_timeout_s + 15
    code = Supervisor(commands, timeout, say=lambda line: print(line, flush=True)).run()
    if stats_json is not None:
        write_merged_stats(stats_json, processes, code)
    return code


def write_merged_stats(path: Path, processes: int, code: int) -> None:
    merged: dict[str, float] = {}
    for i in range(1, processes + 1):
        part = Path(f"{path}.w{i}")
        if not part.exists():
            continue
        for key, value in json.loads(part.read_text()).items():
            if isinstance(value, int | float):
                # the workers ran side by side: the busy span is the longest one's
                both = (merged.get(key, 0), value)
                merged[key] = max(both) if key == "busy_seconds" else sum(both)
        part.unlink()
    path.write_text(json.dumps({**merged, "exit_code": code, "processes": processes}))


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
