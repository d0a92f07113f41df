"""EngineSettings as click options, generated from the pydantic model.

Each command declares the settings it uses (`engine_options("bootstrap_servers", ...)`)
and shows only those. Every option defaults to None and only the flags given reach the
model, so precedence stays flag > EOS_* environment > .env > default. Nested and dict
settings (security, client overrides) come from the environment only.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from eos.cli.common import fail
from eos.config import EngineSettings
from eos.ledger.settings import LedgerSettings

__all__ = [
    "CONNECTION",
    "ENGINE_FIELDS",
    "ENV_PREFIX",
    "LEDGER_PREFIX",
    "engine_options",
    "engine_settings",
    "ledger_settings",
    "settings_error",
    "unreadable",
]

F = TypeVar("F", bound=Callable[..., Any])

ENV_PREFIX = "EOS_"
LEDGER_PREFIX = str(LedgerSettings.model_config["env_prefix"])
_ENV_ONLY = {"security", "client_overrides"}
ENGINE_FIELDS = tuple(name for name in EngineSettings.model_fields if name not in _ENV_ONLY)
CONNECTION = ("bootstrap_servers", "schema_registry_url")


def engine_options(*names: str) -> Callable[[F], F]:
    """One option per EngineSettings field in `names` (every flag-settable field when none
    is named), passed to the command as keyword arguments of the field's name."""
    chosen = names or ENGINE_FIELDS
    unknown = set(chosen) - set(ENGINE_FIELDS)
    if unknown:
        raise ValueError(f"not flag-settable EngineSettings fields: {sorted(unknown)}")

    def decorate(command: F) -> F:
        for name in reversed(chosen):  # the first option decorated last shows first
            command = click.option(
                "--" + name.replace("_", "-"),
                name,
                default=None,
                metavar=_metavar(EngineSettings.model_fields[name].annotation),
                help=_help(name),
            )(command)
        return command

    return decorate


def engine_settings(given: Mapping[str, Any], **overrides: Any) -> EngineSettings:
    """The settings from the flags in `given` that were used, then `overrides`, over the
    environment and .env; exits 2 naming each invalid setting."""
    explicit = {k: v for k, v in given.items() if k in ENGINE_FIELDS and v is not None}
    if "input_topics" in explicit:
        explicit["input_topics"] = [t for t in explicit["input_topics"].split(",") if t]
    explicit.update(overrides)
    try:
        return EngineSettings(**explicit)
    except ValidationError as exc:
        fail(settings_error(exc), 2)
    except SettingsError as exc:
        fail(unreadable(exc, ENV_PREFIX), 2)


def ledger_settings() -> LedgerSettings:
    """The ledger's settings (EOS_LEDGER_* and .env); exits 2 when they are invalid."""
    try:
        return LedgerSettings()
    except ValidationError as exc:
        fail(settings_error(exc), 2)
    except SettingsError as exc:
        fail(unreadable(exc, LEDGER_PREFIX), 2)


def settings_error(exc: ValidationError) -> str:
    """One line naming each invalid setting by its variable (and flag, where it has one):
    the variable's prefix is the model's (EOS_LEDGER_ for the ledger's); only the engine's
    settings are flags."""
    prefix = LEDGER_PREFIX if exc.title == LedgerSettings.__name__ else ENV_PREFIX
    flags = exc.title == EngineSettings.__name__
    parts = []
    for err in exc.errors():
        loc = "_".join(str(p) for p in err["loc"] if not isinstance(p, int)).upper()
        if not loc:
            name = "settings"
        elif flags and loc.lower() in ENGINE_FIELDS:
            name = f"{prefix}{loc} / --{loc.lower().replace('_', '-')}"
        else:
            name = f"{prefix}{loc}"
        parts.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(parts)


def unreadable(exc: SettingsError, prefix: str) -> str:
    """One line for a variable pydantic-settings could not even parse (a dict setting
    that is not JSON)."""
    field = re.search(r'field "(\w+)"', str(exc))
    name = f"{prefix}{field.group(1).upper()}" if field else "an EOS_* variable"
    return (
        f"invalid settings: {name} cannot be read: give a JSON object, such as "
        f'{name}=\'{{"linger.ms": "20"}}\''
    )


def _help(name: str) -> str:
    info = EngineSettings.model_fields[name]
    extra = [f"env: {ENV_PREFIX}{name.upper()}"]
    # A default computed at run time (the host name, a home directory) is the field's
    # description's to explain, not this machine's value to print.
    default = None if info.default_factory is not None else info.get_default()
    if isinstance(default, Enum):
        default = default.value
    if default not in (None, [], {}):
        extra.append(f"default: {default}")
    text = f"{info.description} " if info.description else ""
    return f"{text}[{'; '.join(extra)}]"


def _metavar(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _metavar(inner[0]) if len(inner) == 1 else "TEXT"
    if origin is Literal:
        return "[" + "|".join(str(a) for a in get_args(annotation)) + "]"
    if origin is list:
        return "A,B,..."
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "[" + "|".join(str(m.value) for m in annotation) + "]"
    names = {int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}
    return names.get(annotation, "TEXT")
