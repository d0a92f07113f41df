"""A private ledger for tests that run `eos run ledger` as a subprocess: fresh topics
(set up, schemas registered), the settings and the environment that name them."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest

from eos.config import EngineSettings
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import setup
from eos.testing.cluster import KafkaCluster
from tests.integration.processes import Spawned


class LedgerProcessor(Spawned):
    """A spawned `eos run ledger`."""

    def __init__(self, instance_id: str, env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "eos", "run", "ledger", "--instance-id", instance_id),
                *("--startup-wait", "true"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        super().__init__(instance_id, proc)


@dataclass(frozen=True)
class PrivateLedger:
    tag: str
    env: dict[str, str]  # EOS_* for a processor: cluster, group, DLQ, ids and topics
    engine: EngineSettings
    ledger: LedgerSettings


def private_ledger(
    cluster: KafkaCluster, prefix: str, partitions: int, **more_env: str
) -> PrivateLedger:
    """Topics named `<prefix>-<random>.*`, created with `partitions` partitions, and the
    settings of a processor on them (`more_env` adds EOS_* variables)."""
    tag = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ledger = LedgerSettings.with_prefix(tag)
    env = {
        **LedgerSettings.private_env(tag, cluster.bootstrap_servers, cluster.schema_registry_url),
        **more_env,
    }
    engine = EngineSettings(
        bootstrap_servers=cluster.bootstrap_servers,
        schema_registry_url=cluster.schema_registry_url,
        group_id=env["EOS_GROUP_ID"],
        dlq_topic=env["EOS_DLQ_TOPIC"],
        transactional_id_prefix=tag,
    )
    with pytest.MonkeyPatch.context() as m:  # setup() reads the ledger's topics from the env
        for name, value in ledger.topic_env().items():
            m.setenv(name, value)
        setup(engine, partitions, 1)
    return PrivateLedger(tag, env, engine, ledger)
