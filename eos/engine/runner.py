"""Run an application until it stops: the one call an application's `main` needs."""

from __future__ import annotations

import gc
import json
import logging
import resource
import signal
from collections.abc import Callable
from pathlib import Path

from eos.config import EngineSettings
from eos.engine.app import App, build_processor
from eos.engine.identity import claim_instance
from eos.engine.probe import ProcessorProbe
from eos.engine.stats import EXIT_FATAL
from eos.kafka.statistics import ClientStatistics
from eos.ops.server import serve

__all__ = ["run", "settle_gc"]

# A batch allocates some tens of short-lived containers per record, all freed when it
# commits: with the default first threshold (700) the collector ran every few dozen
# records and took a seventh of a copy app's time. Collections still run, only rarer.
GC_THRESHOLDS = (50_000, 20, 100)

log = logging.getLogger("eos")


def settle_gc() -> None:
    """Start-up is over: what it built (modules, schemas, clients) lives as long as the
    process, so the collector stops scanning it (`gc.freeze`), and collects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(
    app: App | Callable[[EngineSettings], App],
    settings: EngineSettings | None = None,
    *,
    until_caught_up: bool = False,
    stats_json: Path | None = None,
) -> int:
    """Process `app`'s inputs until SIGTERM/SIGINT (or, with `until_caught_up`, until
    every assigned partition is processed); returns the exit code.

    `app` is an App or a factory that builds one from the settings. Settings default to
    the EOS_* environment and .env. Raises ConfigurationError (a missing topic, an input
    without a contract, an instance id another process on this host holds) before
    anything is consumed.
    """
    settings = settings or EngineSettings()
    # This process's instance id (its transactional.id), held until the processor stops;
    # claimed first so that the app's factory sees it too.
    settings, claim = claim_instance(settings)
    client = ClientStatistics() if settings.metrics_port else None
    try:
        built = app if isinstance(app, App) else app(settings)
        processor = build_processor(
            settings,
            built,
            until_caught_up=until_caught_up,
            after_crash=bool(claim.crashed),
            client_stats=client,
        )
    except BaseException:
        claim.release()
        raise
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, processor.request_stop)
    settle_gc()
    server = None
    if settings.metrics_port:
        probe = ProcessorProbe(processor, settings.health_stall_s, client)
        server = serve(settings.metrics_host, settings.metrics_port, probe)
    try:
        code = processor.run()
    except Exception:
        log.exception("processor failed")
        code = EXIT_FATAL
    finally:
        if server is not None:
            server.close()
    claim.release()
    if stats_json is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats = {
            **processor.stats.summary(),
            "exit_code": code,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        }
        stats_json.write_text(json.dumps(stats))
    return code
