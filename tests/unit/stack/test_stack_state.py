"""Stack bookkeeping without Java: run folders, pid files, refusals, status and down."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

import eos.stack.stack as stack_mod
from eos.cli import main
from eos.stack import artifacts as artifacts_mod
from eos.stack.artifacts import Artifacts
from eos.stack.kafka import KafkaNode
from eos.stack.layout import StackLayout, default_home
from eos.stack.processes import ManagedProcess
from eos.stack.stack import Stack, StackError, StackSpec


@pytest.fixture
def layout(tmp_path: Path) -> StackLayout:
    return StackLayout.create(tmp_path / "home", tmp_path / "run")


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Artifacts resolve to nothing and starting a node is recorded, never done."""
    started: list[str] = []
    fake = Artifacts(tmp_path / "libs", tmp_path / "apicurio")
    monkeypatch.setattr(artifacts_mod, "resolve", lambda _layout: fake)

    def refuse(self: object, *args: object, **kwargs: object) -> None:
        started.append(type(self).__name__)
        raise AssertionError("nothing may be started when a port is taken")

    monkeypatch.setattr(KafkaNode, "format_storage", refuse)
    monkeypatch.setattr(ManagedProcess, "start", refuse)
    return started


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_default_home_follows_eos_stack_home_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EOS_STACK_HOME", str(tmp_path / "explicit"))
    assert default_home() == tmp_path / "explicit"
    monkeypatch.delenv("EOS_STACK_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "eos" / "stack"
    layout = StackLayout.create()
    assert layout.run == tmp_path / "xdg" / "eos" / "stack" / "run"
    assert layout.artifacts == tmp_path / "xdg" / "eos" / "stack" / "artifacts"


def test_run_dir_is_independent_of_the_artifact_cache(tmp_path: Path) -> None:
    layout = StackLayout.create(tmp_path / "cache", tmp_path / "elsewhere")
    assert layout.artifacts == tmp_path / "cache" / "artifacts"
    assert layout.pid_file("kafka-2") == tmp_path / "elsewhere" / "kafka-2.pid"
    assert layout.log_file("registry") == tmp_path / "elsewhere" / "logs" / "registry.log"
    assert layout.data_dir("kafka-1") == tmp_path / "elsewhere" / "data" / "kafka-1"


def test_fresh_run_dir_reports_everything_stopped(layout: StackLayout) -> None:
    stack = Stack(layout, say=lambda _: None)
    assert stack.spec == StackSpec()
    rows = stack.status()
    assert [r.name for r in rows] == ["kafka-1", "registry"]
    assert all(r.pid is None and not r.answering and not r.stale_pid_file for r in rows)


def test_status_command_exits_3_when_stopped(
    layout: StackLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "--run-dir", str(layout.run), "status"]) == 3
    out = capsys.readouterr().out
    assert "kafka-1" in out and "stopped" in out
    assert "bootstrap servers" not in out


def test_saved_spec_is_what_status_and_down_act_on(layout: StackLayout) -> None:
    layout.run.mkdir(parents=True)
    (layout.run / "stack.json").write_text(
        json.dumps(
            {
                "brokers": 3,
                "kafka_port": 19092,
                "registry_port": 18081,
                "registry": False,
                "cluster_id": "x",
            }
        )
    )
    stack = Stack(layout, say=lambda _: None)
    assert stack.spec == StackSpec(3, 19092, 18081, registry=False)
    assert [(r.name, r.port) for r in stack.status()] == [
        ("kafka-1", 19092),
        ("kafka-2", 19094),
        ("kafka-3", 19096),
    ]


def test_stale_pid_file_is_reported(
    layout: StackLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    layout.run.mkdir(parents=True)
    layout.pid_file("kafka-1").write_text(f"{_dead_pid()} marker\n")
    rows = {r.name: r for r in Stack(layout).status()}
    assert rows["kafka-1"].stale_pid_file and rows["kafka-1"].pid is None
    assert not rows["registry"].stale_pid_file
    assert main(["stack", "--run-dir", str(layout.run), "status"]) == 3
    assert "stale pid file" in capsys.readouterr().out


def test_down_removes_stale_pid_files_and_wipe_removes_data(layout: StackLayout) -> None:
    said: list[str] = []
    layout.ensure()
    layout.pid_file("kafka-1").write_text(f"{_dead_pid()} marker\n")
    layout.pid_file("registry").write_text(f"{_dead_pid()} marker\n")
    layout.data_dir("kafka-1").mkdir(parents=True)
    (layout.data_dir("kafka-1") / "meta.properties").write_text("x")
    (layout.run / "config").mkdir()
    (layout.run / "stack.json").write_text(
        json.dumps({**asdict(StackSpec(kafka_port=19092)), "cluster_id": "x"})
    )

    Stack(layout, say=said.append).down()
    assert not layout.pid_file("kafka-1").exists()
    assert not layout.pid_file("registry").exists()
    assert not [line for line in said if line.startswith("stopped")]
    assert layout.data_dir("kafka-1").exists()

    Stack(layout, say=said.append).down(wipe=True)
    assert not (layout.run / "data").exists()
    assert not (layout.run / "config").exists()
    assert not (layout.run / "stack.json").exists()
    assert said[-1] == f"wiped data in {layout.run}"


def test_up_refuses_a_different_broker_count_over_existing_data(
    layout: StackLayout, no_java: list[str]
) -> None:
    layout.run.mkdir(parents=True)
    (layout.run / "stack.json").write_text(
        json.dumps({**asdict(StackSpec(brokers=3)), "cluster_id": "abc"})
    )
    with pytest.raises(StackError, match=r"3-broker cluster.*down --wipe"):
        Stack(layout, say=lambda _: None).up(StackSpec(brokers=1, registry=False))
    assert no_java == []


def test_kafka_port_in_use_fails_up_naming_the_port(
    layout: StackLayout, no_java: list[str], listener: int
) -> None:
    with pytest.raises(StackError) as excinfo:
        Stack(layout, say=lambda _: None).up(StackSpec(1, listener, registry=False))
    message = str(excinfo.value)
    assert f"port {listener} on 127.0.0.1 is in use" in message
    assert "kafka-1" in message and "--kafka-port" in message
    assert no_java == []
    assert not layout.pid_file("kafka-1").exists()


def test_controller_port_in_use_fails_up_too(
    layout: StackLayout, no_java: list[str], listener: int
) -> None:
    with pytest.raises(StackError, match=f"port {listener} "):
        Stack(layout, say=lambda _: None).up(StackSpec(1, listener - 1, registry=False))
    assert no_java == []


def test_registry_port_in_use_starts_nothing_at_all(
    layout: StackLayout, no_java: list[str], listener: int
) -> None:
    """Ports are all checked first: a taken registry port must not leave Kafka running."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    kafka_port = free.getsockname()[1]
    free.close()
    with pytest.raises(StackError, match=f"port {listener} .*registry"):
        Stack(layout, say=lambda _: None).up(StackSpec(1, kafka_port, listener))
    assert no_java == []


def test_kafka_is_not_ready_while_a_restarted_broker_has_no_listener(
    layout: StackLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a hard bounce the others' metadata still lists the dead broker, so the
    metadata alone says "ready" while the new process has not even registered."""
    stack = Stack(layout, say=lambda _: None)
    stack.spec = StackSpec(brokers=3, kafka_port=19092)
    monkeypatch.setattr(stack_mod, "kafka_answers", lambda _bootstrap, _n: True)
    listening = {19092, 19096}
    monkeypatch.setattr(stack_mod, "port_open", lambda port: port in listening)
    assert not stack._kafka_ready()
    listening.add(19094)
    assert stack._kafka_ready()
