"""A session that used the fixtures: its topics are gone after it, and it says which
cluster it ran against."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from eos.testing.cluster import KafkaCluster

USER_TEST = """
from pathlib import Path

from eos.serde.avro import AvroContract

SCHEMA = '{"type": "record", "name": "r", "fields": [{"name": "a", "type": "string"}]}'


def test_makes_topics(eos_topic, eos_topics):
    names = [eos_topic("one", partitions=2)]
    names += list(eos_topics({"two": AvroContract(SCHEMA), "three": None}).names.values())
    Path("created.txt").write_text("\\n".join(names))
"""


def test_topics_made_by_the_fixtures_are_deleted_after_the_session(
    eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "eos: tests ran against" in done.stdout
    created = (tmp_path / "created.txt").read_text().split()
    assert len(created) == 3
    admin = AdminClient(eos_cluster.client_config())
    deadline = time.monotonic() + 30  # the brokers' metadata catches up with a deletion
    while (left := set(admin.list_topics(timeout=30).topics) & set(created)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert left == set()
