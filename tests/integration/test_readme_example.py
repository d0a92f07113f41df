"""The README's application example, run as written against the real broker."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from eos.engine import dlq as h
from eos.serde.wire import split
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic, produce_avro, read_committed

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    """The README's first Python block: the whole application."""
    found = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert found, "README has no python block"
    return found.group(1)


def _fresh_topics(cluster: KafkaCluster, *names: str) -> None:
    """The example's fixed topic names, emptied: deleted if an earlier run left them (their
    records may name schema ids of a registry since wiped), then created anew."""
    admin = AdminClient(cluster.client_config())
    existing = [n for n in names if n in admin.list_topics(timeout=10).topics]
    if existing:
        for future in admin.delete_topics(existing, operation_timeout=30).values():
            future.result(timeout=60)
        deadline = time.monotonic() + 60
        while set(existing) & set(admin.list_topics(timeout=10).topics):
            assert time.monotonic() < deadline, f"topics {existing} still there after 60 s"
            time.sleep(0.5)
    futures = admin.create_topics([NewTopic(n, 3, 1) for n in names], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=60)


def _decode(raw: bytes | None, schema: dict[str, Any]) -> Any:
    _schema_id, payload = split(raw)
    return fastavro.schemaless_reader(io.BytesIO(payload.read()), fastavro.parse_schema(schema))


@pytest.mark.parametrize(
    "command",
    [["pricing.py"], ["-m", "eos", "run", "pricing:app"]],
    ids=["python pricing.py", "eos run pricing:app"],
)
def test_the_readme_example_prices_orders_and_dead_letters_a_bad_one(
    eos_cluster: KafkaCluster, tmp_path: Path, command: list[str]
) -> None:
    source = _example()
    (tmp_path / "pricing.py").write_text(source)
    _fresh_topics(eos_cluster, "orders", "orders.priced")
    dlq = create_topic(eos_cluster, "orders-dlq")
    run = uuid.uuid4().hex[:8]
    orders: list[dict[str, Any]] = [
        {"order_id": f"{run}-{i}", "amount_cents": 1000 + i} for i in range(20)
    ]
    bad: dict[str, Any] = {"order_id": f"{run}-bad", "amount_cents": 0}
    order_schema = re.search(r'ORDER = AvroContract\(\n    """(.*?)"""', source, re.S)
    assert order_schema
    produce_avro(
        eos_cluster,
        "orders",
        order_schema.group(1),
        [(o["order_id"], o) for o in [*orders[:10], bad, *orders[10:]]],
    )

    env = {
        **os.environ,
        "EOS_BOOTSTRAP_SERVERS": eos_cluster.bootstrap_servers,
        "EOS_SCHEMA_REGISTRY_URL": eos_cluster.schema_registry_url,
        "EOS_GROUP_ID": f"pricing-{run}",
        "EOS_DLQ_TOPIC": dlq,
        "EOS_INSTANCE_ID": f"readme-{run}",
    }
    # As the README says: setup registers the schemas, then the processor runs.
    subprocess.run(
        [sys.executable, "-m", "eos", "schemas", "register", "pricing:app"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, *command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    priced_schema = {
        "type": "record",
        "name": "PricedOrder",
        "fields": [
            {"name": "order_id", "type": "string"},
            {"name": "amount_cents", "type": "long"},
            {"name": "fee_cents", "type": "long"},
        ],
    }
    ours: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(ours) < len(orders):
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(1)
            values = [
                _decode(m.value(), priced_schema)
                for m in read_committed(eos_cluster, "orders.priced")
            ]
            ours = [v for v in values if v["order_id"].startswith(f"{run}-")]
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output

    expected = [{**o, "fee_cents": max(1, o["amount_cents"] // 100)} for o in orders]
    assert sorted(ours, key=lambda v: v["order_id"]) == sorted(
        expected, key=lambda v: v["order_id"]
    )
    # Earlier runs' orders are read again by this run's new group: keep this run's own.
    [dead] = [
        m for m in read_committed(eos_cluster, dlq) if (m.key() or b"").startswith(run.encode())
    ]
    headers: Any = dead.headers()
    assert h.header(headers, h.H_ERROR_REASON) == "PERMANENT"
    assert "amount must be positive" in (h.header(headers, h.H_ERROR_MESSAGE) or "")
    assert dead.key() == bad["order_id"].encode()
