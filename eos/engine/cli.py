"""`eos run APP` and `eos dlq replay`: settings from flags, env (EOS_*) and .env."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import resource
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eos.config import EngineSettings
from eos.engine.app import App, AppFactory, TopicsMissing, build_processor
from eos.engine.dlq import replay_transform
from eos.engine.processor import EXIT_FATAL

KNOWN_APPS = {
    "events": "eos.examples.events:build",
    "ledger": "eos.ledger.app:build",
}
# Flags for every scalar setting; nested and dict settings come from the environment.
_SKIP = {"security", "client_overrides"}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run an application on the transactional engine")
    run.add_argument("app", help=f"one of {', '.join(KNOWN_APPS)} or module:factory")
    run.add_argument(
        "--until-caught-up",
        action="store_true",
        help="stop once every assigned partition is fully processed",
    )
    run.add_argument(
        "--stats-json",
        type=Path,
        default=None,
        help="write the run's totals, busy time and CPU time here on exit",
    )
    add_setting_flags(run)

    dlq = sub.add_parser("dlq", help="dead-letter topic tools")
    dlq_actions = dlq.add_subparsers(dest="dlq_action", required=True)
    replay = dlq_actions.add_parser(
        "replay",
        help="re-publish dead-lettered records to their original topics, exactly once, then stop",
    )
    add_setting_flags(replay)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (also EOS_<NAME> env vars or .env)")
    for name, info in EngineSettings.model_fields.items():
        if name in _SKIP:
            continue
        flag = "--" + name.replace("_", "-")
        helptext = info.description or ""
        group.add_argument(flag, dest=f"setting_{name}", default=None, metavar="V", help=helptext)


def settings_from(args: argparse.Namespace, **overrides: Any) -> EngineSettings:
    explicit = {
        k.removeprefix("setting_"): v
        for k, v in vars(args).items()
        if k.startswith("setting_") and v is not None
    }
    if "input_topics" in explicit:
        explicit["input_topics"] = [t for t in explicit["input_topics"].split(",") if t]
    explicit.update(overrides)
    return EngineSettings(**explicit)


def load_app(name: str, settings: EngineSettings) -> App:
    target = KNOWN_APPS.get(name, name)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ValueError(
            f"app {name!r} is neither a known app ({', '.join(KNOWN_APPS)}) nor module:factory"
        )
    factory: AppFactory = getattr(importlib.import_module(module_name), attr)
    return factory(settings)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(args: argparse.Namespace) -> int:
    setup_logging()
    try:
        if args.command == "run":
            settings = settings_from(args)
            app = load_app(args.app, settings)
            until = args.until_caught_up
        else:
            base = settings_from(args)
            settings = settings_from(
                args,
                group_id=f"{base.group_id}-dlq-replay",
                input_topics=[base.dlq_topic],
                dlq_topic=f"{base.dlq_topic}.replay-failed",
                transactional_id_prefix=f"{base.transactional_id_prefix}-dlq-replay",
            )
            app = App("dlq-replay", replay_transform, {base.dlq_topic: None}, {})
            until = True
        processor = build_processor(settings, app, until_caught_up=until)
    except ValidationError as exc:
        print(settings_error(exc), file=sys.stderr)
        return 2
    except (TopicsMissing, ValueError, FileNotFoundError) as exc:
        print(f"eos {args.command}: {exc}", file=sys.stderr)
        return 2
    processor.install_signal_handlers()
    try:
        code = processor.run()
    except Exception:
        logging.getLogger("eos").exception("processor failed")
        code = EXIT_FATAL
    if getattr(args, "stats_json", None):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats = {
            **processor.stats.summary(),
            "exit_code": code,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        }
        args.stats_json.write_text(json.dumps(stats))
    return code


def settings_error(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        loc = "_".join(str(p) for p in err["loc"]).upper()
        name = f"EOS_{loc} / --{loc.lower().replace('_', '-')}" if loc else "settings"
        lines.append(f"  {name}: {err['msg']}")
    return "\n".join(lines)
