"""Process identity on one host: processes left to pick their instance id never share a
transactional.id; a second process given a running one's id refuses to start."""

from __future__ import annotations

import os
import socket
import subprocess
from collections import Counter
from pathlib import Path

import fastavro

from eos.serde.schemas import contract
from eos.serde.wire import split
from eos.tools.commands import run_command
from tests.integration.engine.conftest import Pipeline, make_events
from tests.integration.processes import Spawned, wait_until

ENRICHED = contract("enriched_event").parsed


def _without_instance(cmd: list[str]) -> list[str]:
    at = cmd.index("--instance-id")
    return cmd[:at] + cmd[at + 2 :]


def _spawn_unnamed(pipeline: Pipeline, name: str, state_dir: Path) -> Spawned:
    """`eos run events` with no --instance-id and no EOS_INSTANCE_ID: it picks its own."""
    cmd = run_command(
        pipeline.cluster.bootstrap_servers,
        pipeline.cluster.schema_registry_url,
        pipeline.group,
        (pipeline.input, pipeline.output, pipeline.dlq),
        "unused",
        "--transactional-id-prefix",
        pipeline.group,
        "--batch-max-ms",
        "50",
        "--session-timeout-ms",
        "10000",
    )
    env = {k: v for k, v in os.environ.items() if k != "EOS_INSTANCE_ID"}
    env["EOS_STATE_DIR"] = str(state_dir)
    proc = subprocess.Popen(
        _without_instance(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    pipeline.procs.append(proc)
    return Spawned(name, proc)


def _decoded(pipeline: Pipeline) -> list[dict[str, object]]:
    out = []
    for m in pipeline.outputs(timeout=30):
        _schema_id, payload = split(m.value())
        record = fastavro.schemaless_reader(payload, ENRICHED, None)
        assert isinstance(record, dict)
        out.append(record)
    return out


def test_two_processes_without_an_instance_id_on_one_host_never_fence_each_other(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    host = socket.gethostname()
    a = _spawn_unnamed(pipeline, "a", tmp_path)
    wait_until(lambda: bool(a.partitions("assigned", pipeline.input)), 60, "A assigned", a)
    b = _spawn_unnamed(pipeline, "b", tmp_path)
    wait_until(lambda: bool(b.partitions("assigned", pipeline.input)), 60, "B assigned", a, b)

    events = make_events(600, accounts=30)  # keys on every partition
    pipeline.produce(events)
    wait_until(lambda: len(pipeline.outputs(timeout=10)) >= len(events), 90, "outputs", a, b)

    assert a.stop() == 0, a.tail()
    assert b.stop() == 0, b.tail()
    for p in (a, b):
        assert not [line for line in p.lines if "fenced" in line.lower()], p.tail()
    assert a.logged(f"instance {host}-0 ")
    assert b.logged(f"instance {host}-1 ")

    outputs = _decoded(pipeline)
    ids = Counter(str(r["id"]) for r in outputs)
    assert set(ids) == {str(e["id"]) for e in events}
    assert set(ids.values()) == {1}, {i: n for i, n in ids.items() if n > 1}
    assert {r["processed_by"] for r in outputs} == {f"{host}-0", f"{host}-1"}
    assert pipeline.dead_letters() == []


def test_a_second_process_with_a_running_ones_instance_id_refuses_to_start(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    env = {"EOS_STATE_DIR": str(tmp_path)}
    first = Spawned("first", pipeline.spawn("twin", env=env))
    wait_until(lambda: bool(first.logged("processing ")), 60, "first to start", first)

    second = Spawned("second", pipeline.spawn("twin", env=env))
    assert second.wait(10) == 2, second.tail()
    refusal = [line for line in second.lines if "already running" in line]
    assert len(refusal) == 1, second.tail()
    line = refusal[0]
    assert f"group {pipeline.group}" in line and "twin" in line, line
    assert f"pid {first.proc.pid}" in line, line
    assert "EOS_INSTANCE_ID" in line, line

    assert first.alive(), first.tail()
    assert first.stop() == 0, first.tail()
    assert not first.logged("fenced"), first.tail()
