"""Command lines of `eos` child processes, for the tools and the tests that spawn them."""

from __future__ import annotations

import sys

__all__ = ["eos_command", "run_command"]


def eos_command(*args: str) -> list[str]:
    """`eos <args>` run by this interpreter (`python -m eos`), so it is this install's eos."""
    return [sys.executable, "-m", "eos", *args]


def run_command(
    bootstrap: str,
    registry_url: str,
    group: str,
    topics: tuple[str, str, str],
    instance: str,
    *extra: str,
    app: str = "events",
) -> list[str]:
    """The command line of one `eos run APP` process (default the events app): group,
    (input, output, DLQ) topics and instance, then `extra` flags."""
    input_topic, output_topic, dlq_topic = topics
    return eos_command(
        "run",
        app,
        "--bootstrap-servers",
        bootstrap,
        "--schema-registry-url",
        registry_url,
        "--group-id",
        group,
        "--input-topics",
        input_topic,
        "--output-topic",
        output_topic,
        "--dlq-topic",
        dlq_topic,
        "--instance-id",
        instance,
        "--startup-wait",  # a supervised service: it waits out a cluster not up yet
        "true",
        *extra,
    )
