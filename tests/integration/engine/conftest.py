"""Topics, settings and event helpers for the engine's integration tests."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.app import app_subjects
from eos.examples.events import build
from eos.serde import compat
from eos.serde.schemas import load_schema
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic, produce_avro, read_committed
from eos.tools.commands import run_command


@dataclass
class Pipeline:
    cluster: KafkaCluster
    input: str
    output: str
    dlq: str
    group: str
    partitions: int
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def settings(self, **overrides: Any) -> EngineSettings:
        base: dict[str, Any] = {
            "bootstrap_servers": self.cluster.bootstrap_servers,
            "schema_registry_url": self.cluster.schema_registry_url,
            "group_id": self.group,
            "input_topics": [self.input],
            "output_topic": self.output,
            "dlq_topic": self.dlq,
            "instance_id": f"test-{uuid.uuid4().hex[:6]}",
            "transactional_id_prefix": self.group,
            "batch_max_ms": 50,
            "backoff_initial_ms": 20,
            "backoff_max_ms": 200,
            "session_timeout_ms": 10_000,
        }
        base.update(overrides)
        return EngineSettings(**base)

    def produce(self, events: list[dict[str, Any]]) -> None:
        produce_avro(
            self.cluster, self.input, load_schema("event"), [(e["account"], e) for e in events]
        )

    def outputs(self, timeout: float = 30) -> list[Any]:
        return read_committed(self.cluster, self.output, timeout)

    def dead_letters(self, timeout: float = 30) -> list[Any]:
        return read_committed(self.cluster, self.dlq, timeout)

    def spawn(
        self,
        instance: str,
        *extra: str,
        until_caught_up: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Run `eos run events` as a separate process (to kill or signal it)."""
        cmd = run_command(
            self.cluster.bootstrap_servers,
            self.cluster.schema_registry_url,
            self.group,
            (self.input, self.output, self.dlq),
            instance,
            "--transactional-id-prefix",
            self.group,
            "--batch-max-ms",
            "50",
            "--session-timeout-ms",
            "10000",
            *extra,
        )
        if until_caught_up:
            cmd.append("--until-caught-up")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        return proc


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM a spawned processor; its exit code and everything it printed."""
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def make_events(
    n: int, start: int = 0, action: str = "ok", accounts: int = 7
) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {
            "id": f"e{i}",
            "seq": i,
            "account": f"acct-{i % accounts}",
            "amount": 100 + i,
            "action": action,
            "created_at_ms": now,
            "payload": "x" * 40,
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def pipeline(eos_cluster: KafkaCluster) -> Iterator[Pipeline]:
    tag = uuid.uuid4().hex[:8]
    p = Pipeline(
        cluster=eos_cluster,
        input=create_topic(eos_cluster, f"events-{tag}", partitions=3),
        output=create_topic(eos_cluster, f"enriched-{tag}", partitions=3),
        dlq=create_topic(eos_cluster, f"dlq-{tag}", partitions=1),
        group=f"g-{tag}",
        partitions=3,
    )
    # Setup registers the app's schemas; processors only look them up.
    registry = SchemaRegistryClient({"url": eos_cluster.schema_registry_url, "timeout": 10})
    compat.register_subjects(registry, app_subjects(build(p.settings())))
    yield p
    for proc in p.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
