"""`eos stack` end to end: the real CLI in subprocesses, real Kafka and registry processes.

Every test has its own run folder (under tmp_path) and its own free ports, so it never
touches the default stack (127.0.0.1:9092 and 8081, run folder <home>/run). Artifacts
come from the cache named by EOS_STACK_HOME, else the default cache folder; a cold cache
is filled once, before the first test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.app import app_subjects
from eos.examples.events import build
from eos.serde import compat
from eos.serde.schemas import contract, load_schema
from eos.serde.wire import split
from eos.stack.artifacts import ToolMissing, resolve
from eos.stack.layout import StackLayout
from eos.stack.processes import ManagedProcess, port_open
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic, produce_avro, read_committed
from eos.testing.stack import free_ports
from eos.tools.commands import run_command
from tests.integration.engine.conftest import make_events

pytestmark = pytest.mark.slow

ENRICHED = contract("enriched_event").parsed
KAFKA_BASE_PORT = 24092  # each test takes 6 ports from here: 3 brokers x (broker, controller)
REGISTRY_BASE_PORT = 23081
UP_TIMEOUT = 240.0  # for the `up` subprocess; the CLI itself gives up after --timeout
CLI_TIMEOUT = 120.0  # for every other command (a 3-broker `down` included)


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs (gone, or a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _line(output: str, name: str) -> str:
    """The status line of one process."""
    lines = [line for line in output.splitlines() if line.split()[:1] == [name]]
    assert len(lines) == 1, f"no single status line for {name} in:\n{output}"
    return lines[0]


@dataclass
class StackRun:
    """One test's stack: its run folder, its ports, and the CLI pointed at them."""

    run_dir: Path
    kafka_port: int
    registry_port: int

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    def bootstrap(self, brokers: int = 1) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_port + 2 * i}" for i in range(brokers))

    def eos(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "eos", "stack", "--run-dir", str(self.run_dir), *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

    def up(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.eos(
            "up",
            "--kafka-port",
            str(self.kafka_port),
            "--registry-port",
            str(self.registry_port),
            "--timeout",
            "180",
            *args,
            timeout=UP_TIMEOUT,
        )

    def process(self, name: str) -> ManagedProcess:
        return ManagedProcess(
            name=name,
            marker=f"-Deos.stack.id={self.run_dir.resolve()}/{name}",
            pid_file=self.run_dir / f"{name}.pid",
            log_file=self.run_dir / "logs" / f"{name}.log",
        )

    def pids(self) -> dict[str, int]:
        """name -> pid, from the pid files `up` wrote."""
        return {f.stem: int(f.read_text().split()[0]) for f in sorted(self.run_dir.glob("*.pid"))}


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{' '.join(result.args[3:])} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fill the artifact cache once (a no-op when warm), so `up` only measures start-up."""
    layout = StackLayout.create(run=tmp_path_factory.mktemp("resolve"))
    try:
        resolve(layout)
    except ToolMissing as exc:
        pytest.skip(f"the local stack cannot run here: {exc}")
    return layout.home


@pytest.fixture
def stack(tmp_path: Path, artifact_cache: Path) -> Iterator[StackRun]:
    """A stack in its own run folder on free ports; whatever it started is stopped after."""
    run = StackRun(
        run_dir=tmp_path / "run",
        kafka_port=free_ports(KAFKA_BASE_PORT, 6),
        registry_port=free_ports(REGISTRY_BASE_PORT, 1),
    )
    default = StackLayout.create().run.resolve()
    assert run.run_dir.resolve() != default
    assert not {run.kafka_port, run.registry_port} & {9092, 8081}
    yield run
    if not run.run_dir.exists():
        return
    try:
        result = run.eos("down", timeout=CLI_TIMEOUT)
        problem = "" if result.returncode == 0 else f"`down` failed: {result.stdout}"
    except subprocess.TimeoutExpired:
        problem = "`down` timed out"
    # A last resort, so that a broken `down` never leaves Java processes behind.
    leftovers = [n for n in run.pids() if run.process(n).running_pid() is not None]
    for name in leftovers:
        run.process(name).stop(timeout=10)
    assert not problem and not leftovers, f"{problem}; still running after down: {leftovers}"


def test_up_with_registry_answers_then_up_again_keeps_the_same_processes(
    stack: StackRun,
) -> None:
    out = _ok(stack.up())
    assert f"started kafka-1 on 127.0.0.1:{stack.kafka_port}" in out
    assert f"started registry on 127.0.0.1:{stack.registry_port}" in out
    assert f"bootstrap servers: {stack.bootstrap()}" in out
    assert stack.registry_url in out

    with urllib.request.urlopen(f"{stack.registry_url}/subjects", timeout=10) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == []

    pids = stack.pids()
    assert set(pids) == {"kafka-1", "registry"}
    for name, pid in pids.items():
        assert f"-Deos.stack.id={stack.run_dir.resolve()}/{name}" in _cmdline(pid)

    status = stack.eos("status")
    assert status.returncode == 0, status.stdout
    assert f"running pid {pids['kafka-1']}, answering" in _line(status.stdout, "kafka-1")
    assert f"running pid {pids['registry']}, answering" in _line(status.stdout, "registry")
    assert f"bootstrap servers: {stack.bootstrap()}" in status.stdout
    assert f"schema registry:   {stack.registry_url}" in status.stdout

    # A second `up` finds both running and starts no second copy.
    again = _ok(stack.up())
    assert f"kafka-1 already running (pid {pids['kafka-1']})" in again
    assert f"registry already running (pid {pids['registry']})" in again
    assert "started" not in again
    assert stack.pids() == pids
    assert not any(_gone(pid) for pid in pids.values())

    # Another shape of stack from the same run folder is refused while this one runs.
    other = stack.up("--no-registry")
    assert other.returncode == 1
    assert "a different stack is already running" in other.stdout
    assert stack.pids() == pids

    logs = _ok(stack.eos("logs", "kafka-1", "-n", "5"))
    assert f"==> {stack.run_dir / 'logs' / 'kafka-1.log'} <==" in logs

    down = _ok(stack.eos("down"))
    assert "stopped registry" in down and "stopped kafka-1" in down
    assert all(_wait_gone(pid) for pid in pids.values())
    assert stack.pids() == {}
    assert not port_open(stack.kafka_port)
    assert not port_open(stack.registry_port)

    stopped = stack.eos("status")
    assert stopped.returncode == 3, stopped.stdout
    assert _line(stopped.stdout, "kafka-1").endswith("stopped")
    assert _line(stopped.stdout, "registry").endswith("stopped")
    assert "bootstrap servers" not in stopped.stdout


def test_stale_pid_file_is_reported_then_cleaned_by_up_and_down_wipe_removes_data(
    stack: StackRun,
) -> None:
    stack.run_dir.mkdir(parents=True)
    dead = _dead_pid()
    stale = stack.process("kafka-1")
    stale.pid_file.write_text(f"{dead} {stale.marker}\n")

    status = stack.eos("status")
    assert status.returncode == 3, status.stdout
    assert "stale pid file (process gone)" in _line(status.stdout, "kafka-1")

    out = _ok(stack.up("--no-registry"))
    assert f"removing stale pid file {stale.pid_file} (pid {dead} is gone)" in out
    assert f"started kafka-1 on 127.0.0.1:{stack.kafka_port}" in out
    pid = stack.pids()["kafka-1"]
    assert pid != dead
    assert stale.running_pid() == pid

    status = stack.eos("status")
    assert status.returncode == 0, status.stdout
    assert "stale" not in status.stdout
    assert f"running pid {pid}, answering" in _line(status.stdout, "kafka-1")
    assert "registry" not in status.stdout  # --no-registry: not expected, not reported

    data = stack.run_dir / "data" / "kafka-1"
    assert (data / "meta.properties").exists()
    down = _ok(stack.eos("down", "--wipe"))
    assert "stopped kafka-1" in down
    assert f"wiped data in {stack.run_dir}" in down
    assert _wait_gone(pid)
    assert not data.exists()
    assert not (stack.run_dir / "stack.json").exists()
    assert not (stack.run_dir / "config").exists()
    assert stack.pids() == {}
    assert stack.eos("status").returncode == 3


def test_a_lone_broker_killed_with_sigkill_starts_again_on_its_data(stack: StackRun) -> None:
    """A machine switched off, a session ended: the node's registration outlives it, and
    the restarted broker must wait that session out rather than give up and exit."""
    _ok(stack.up("--no-registry"))
    topic = f"killed-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap()})
    admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30)[topic].result(timeout=60)
    producer = Producer({"bootstrap.servers": stack.bootstrap(), "acks": "all"})
    producer.produce(topic, key="k", value="kept")
    assert producer.flush(30) == 0

    pid = stack.pids()["kafka-1"]
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)

    out = _ok(stack.up("--no-registry"))
    assert "kafka-1 was not stopped cleanly" in out
    assert stack.pids()["kafka-1"] != pid
    cluster = KafkaCluster(stack.bootstrap(), schema_registry_url="unused", source="test")
    records = read_committed(cluster, topic, timeout=60)
    assert [m.value() for m in records] == [b"kept"]


@pytest.fixture
def foreign_listener(stack: StackRun) -> Iterator[subprocess.Popen[str]]:
    """Another program (not ours) listening on the stack's Kafka port."""
    script = (
        "import socket, sys, time\n"
        "s = socket.socket()\n"
        "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
        "s.listen()\n"
        "print('listening', flush=True)\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(stack.kafka_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "listening"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_port_in_use_fails_up_and_down_leaves_the_foreign_owner_alone(
    stack: StackRun, foreign_listener: subprocess.Popen[str]
) -> None:
    result = stack.up("--no-registry")
    assert result.returncode == 1
    assert f"port {stack.kafka_port} on 127.0.0.1 is in use" in result.stdout
    assert "--kafka-port" in result.stdout
    assert stack.pids() == {}

    # A pid file naming the foreign process (as after a reboot recycled the pid) does
    # not make it ours: status calls it stale, and down must not signal it.
    ours = stack.process("kafka-1")
    ours.pid_file.write_text(f"{foreign_listener.pid} {ours.marker}\n")
    status = stack.eos("status")
    assert status.returncode == 3
    assert "stale pid file" in _line(status.stdout, "kafka-1")

    down = _ok(stack.eos("down"))
    assert "stopped" not in down
    time.sleep(0.5)
    assert foreign_listener.poll() is None, "down signalled a process it did not start"
    assert port_open(stack.kafka_port)
    assert not ours.pid_file.exists()


def test_registry_port_in_use_fails_up_before_kafka_starts(stack: StackRun) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.registry_port))
        squatter.listen()
        result = stack.up()
    assert result.returncode == 1
    assert f"port {stack.registry_port} on 127.0.0.1 is in use" in result.stdout
    assert "registry cannot listen there" in result.stdout
    assert "started kafka-1" not in result.stdout
    assert stack.pids() == {}
    assert not port_open(stack.kafka_port)


def test_three_brokers_replicate_a_committed_transaction(stack: StackRun) -> None:
    out = _ok(stack.up("--brokers", "3", "--no-registry"))
    bootstrap = stack.bootstrap(3)
    assert f"bootstrap servers: {bootstrap}" in out
    pids = stack.pids()
    assert set(pids) == {"kafka-1", "kafka-2", "kafka-3"}

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"rf3-{uuid.uuid4().hex[:10]}"
    created = admin.create_topics(
        [NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})], operation_timeout=30
    )
    created[topic].result(timeout=60)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "transactional.id": f"stack-test-{uuid.uuid4()}",
        }
    )
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer.init_transactions(60)
    producer.begin_transaction()
    expected = {f"key-{i}": f"value-{i}" for i in range(30)}
    for key, value in expected.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    producer.commit_transaction(60)
    assert errors == []

    cluster = KafkaCluster(bootstrap, schema_registry_url="unused", source="test")
    records = read_committed(cluster, topic, timeout=60)
    seen = {m.key().decode(): m.value().decode() for m in records}  # type: ignore[union-attr]
    assert seen == expected
    assert len(records) == len(expected)

    meta = admin.list_topics(timeout=10)
    assert sorted(b.id for b in meta.brokers.values()) == [1, 2, 3]
    partitions = meta.topics[topic].partitions
    assert len(partitions) == 3
    for p in partitions.values():
        assert sorted(p.replicas) == [1, 2, 3], p
        assert sorted(p.isrs) == [1, 2, 3], p
    txn_state = meta.topics.get("__transaction_state")
    assert txn_state is not None, sorted(meta.topics)
    assert txn_state.partitions
    assert all(len(p.replicas) == 3 for p in txn_state.partitions.values())

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["min.insync.replicas"].value == "2"

    down = _ok(stack.eos("down", "--wipe"))
    for name in pids:
        assert f"stopped {name}" in down
    assert all(_wait_gone(pid) for pid in pids.values())
    assert not (stack.run_dir / "data").exists()
    assert stack.pids() == {}


def _avro(name: str, *fields: str) -> Schema:
    record = {
        "type": "record",
        "name": name,
        "namespace": "eos.stack.test",
        "fields": [{"name": f, "type": "string", "default": ""} for f in fields],
    }
    return Schema(json.dumps(record), "AVRO")


def test_registry_keeps_subjects_versions_and_ids_across_a_sigkill(stack: StackRun) -> None:
    out = _ok(stack.up())
    data = stack.run_dir.resolve() / "data" / "registry"
    tag = uuid.uuid4().hex[:8]
    registered = {
        f"orders-{tag}-value": [_avro("Order", "id"), _avro("Order", "id", "note")],
        f"payments-{tag}-value": [_avro("Payment", "id")],
        f"refunds-{tag}-value": [_avro("Refund", "id")],
    }
    client = SchemaRegistryClient({"url": stack.registry_url, "timeout": 10})
    ids = {
        subject: [client.register_schema(subject, schema) for schema in schemas]
        for subject, schemas in registered.items()
    }
    used = {i for subject_ids in ids.values() for i in subject_ids}
    assert len(used) == 4, ids

    # The hard kill comes right after the last write: a commit the registry
    # acknowledged must already be on disk, not waiting for a delayed flush.
    pid = stack.pids()["registry"]
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)
    deadline = time.monotonic() + 15
    while port_open(stack.registry_port) and time.monotonic() < deadline:
        time.sleep(0.1)  # the JVM's other threads may still hold the socket

    again = _ok(stack.up())
    assert "kafka-1 already running" in again
    assert f"started registry on 127.0.0.1:{stack.registry_port}" in again
    assert stack.pids()["registry"] != pid

    def check(client: SchemaRegistryClient) -> None:
        assert set(registered) <= set(client.get_subjects())
        for subject, schemas in registered.items():
            assert client.get_versions(subject) == list(range(1, len(schemas) + 1)), subject
            for version, (schema, schema_id) in enumerate(
                zip(schemas, ids[subject], strict=True), 1
            ):
                got = client.get_version(subject, version)
                assert got.schema_id == schema_id, (subject, version)
                stored = client.get_schema(schema_id)
                assert stored.schema_str is not None
                assert json.loads(stored.schema_str) == json.loads(str(schema.schema_str))

    # A new client each time: a client caches what it has seen.
    client = SchemaRegistryClient({"url": stack.registry_url, "timeout": 10})
    check(client)
    # The id counter carries on: a new schema gets an id no earlier schema had.
    shipment = f"shipments-{tag}-value"
    fresh = client.register_schema(shipment, _avro("Shipment", "id"))
    assert fresh not in used
    assert fresh > max(used)
    ids[shipment] = [fresh]
    registered[shipment] = [_avro("Shipment", "id")]

    # A plain `down` keeps the data too; `down --wipe` deletes it.
    assert f"registry data in {data}" in out
    assert any(data.iterdir())
    _ok(stack.eos("down"))
    _ok(stack.up())
    check(SchemaRegistryClient({"url": stack.registry_url, "timeout": 10}))
    down = _ok(stack.eos("down", "--wipe"))
    assert "stopped registry" in down
    assert not data.exists()


def test_a_processor_survives_a_frozen_broker_without_hanging_or_exiting(
    stack: StackRun, eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """The broker stops answering (SIGSTOP) for longer than a transaction may last: every
    transactional call is bounded, the producer is replaced if it must be, and the
    processor goes on once the broker is back: no exit, no hang, exactly once."""
    _ok(stack.up("--no-registry"))
    cluster = KafkaCluster(stack.bootstrap(), eos_cluster.schema_registry_url, "private")
    tag = uuid.uuid4().hex[:6]
    topics = {
        "input": create_topic(cluster, f"frozen-in-{tag}", 3),
        "output": create_topic(cluster, f"frozen-out-{tag}", 3),
        "dlq": create_topic(cluster, f"frozen-dlq-{tag}", 1),
    }
    settings = EngineSettings(
        bootstrap_servers=cluster.bootstrap_servers,
        schema_registry_url=cluster.schema_registry_url,
        input_topics=[topics["input"]],
        output_topic=topics["output"],
    )
    registry = SchemaRegistryClient({"url": cluster.schema_registry_url, "timeout": 10})
    compat.register_subjects(registry, app_subjects(build(settings)))
    events = make_events(3000)
    produce_avro(
        cluster, topics["input"], load_schema("event"), [(e["account"], e) for e in events]
    )
    cmd = run_command(
        cluster.bootstrap_servers,
        cluster.schema_registry_url,
        f"g-{tag}",
        (topics["input"], topics["output"], topics["dlq"]),
        f"frozen-{tag}",
        "--batch-max-records",
        "50",
        "--transaction-timeout-ms",
        "10000",
        "--session-timeout-ms",
        "6000",
    )
    env = {**os.environ, "EOS_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    out = ""
    try:
        deadline = time.monotonic() + 60
        while len(read_committed(cluster, topics["output"])) < 300:
            assert time.monotonic() < deadline and proc.poll() is None, "no progress"
            time.sleep(0.5)
        broker = stack.pids()["kafka-1"]
        os.kill(broker, signal.SIGSTOP)
        try:
            time.sleep(30)  # three transaction timeouts
            assert proc.poll() is None, "the processor exited while the broker was frozen"
        finally:
            os.kill(broker, signal.SIGCONT)
        deadline = time.monotonic() + 180
        while len(read_committed(cluster, topics["output"], 60)) < len(events):
            assert proc.poll() is None, "the processor exited after the broker came back"
            assert time.monotonic() < deadline, "the processor did not catch up"
            time.sleep(1)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=90)[0]
        (tmp_path / "processor.log").write_text(out)  # beside the stack's logs, for a post-mortem
    assert proc.returncode == 0, out[-5000:]
    copies: dict[str, list[str]] = {}
    for m in read_committed(cluster, topics["output"], 60):
        value: Any = fastavro.schemaless_reader(split(m.value())[1], ENRICHED)
        copies.setdefault(value["id"], []).append(f"{m.partition()}@{m.offset()}")
    twice = {i: at for i, at in copies.items() if len(at) > 1}
    missing = [e["id"] for e in events if e["id"] not in copies]
    assert not twice and not missing and len(copies) == len(events), (
        f"{len(twice)} committed more than once (partition@offset of each copy): "
        f"{dict(list(twice.items())[:8])}; {len(missing)} missing: {missing[:8]}\n{out[-5000:]}"
    )
    assert read_committed(cluster, topics["dlq"], 60) == []
