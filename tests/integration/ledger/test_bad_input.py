"""The ledger under a flood of bad input, on the real broker and registry.

A real `eos run ledger` process consumes 10,000+ malformed records of every kind (not the
wire format, unknown or foreign schema ids, broken Avro, misrouted keys and partitions,
extreme numbers, ids and accounts that break the rules, ~1 MB values) shuffled in with
2,000 valid payments. Each record must end exactly once where its category says: in the
DLQ with the right reason header, or in the rejected topic with the right
RejectionReason, or posted (one debit, one credit); nothing lost, nothing extra, the
processor still running and exiting 0 on SIGTERM, and the books verifying.

The categories are in bad_input_categories.py; `pytest -s` prints the table of outcomes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import cast

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.config import EngineSettings
from eos.errors import RunFailed
from eos.kafka.produce import Encoded, produce
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify import Report, verify
from eos.serde.avro import AvroEncoder
from eos.serde.schemas import contract, load_schema
from eos.testing.cluster import KafkaCluster
from eos.tools.demo import wait_caught_up
from tests.integration.ledger.bad_input_cases import (
    DLQ,
    POSTED,
    Case,
    Maker,
    SchemaIds,
    build,
    check_writer,
    funding,
)
from tests.integration.ledger.bad_input_categories import RULES, VALID, WIRE
from tests.integration.ledger.bad_input_outcomes import Position, collect, compare, table
from tests.integration.ledger.private import LedgerProcessor, private_ledger

pytestmark = pytest.mark.slow

PARTITIONS = 3
SEED = 20_261_201
# The circuit breaker stops a processor when over half of the last 1,000 records were
# dead-lettered; the shuffled stream stays well below that, so it must never trip.
MAX_DLQ_SHARE = 0.42


@dataclass
class Rig:
    """Private ledger topics, the settings naming them, and the processors started."""

    cluster: KafkaCluster
    tag: str
    env: dict[str, str]
    engine: EngineSettings
    ledger: LedgerSettings
    processors: list[LedgerProcessor] = field(default_factory=list)

    def start(self, instance_id: str) -> LedgerProcessor:
        proc = LedgerProcessor(instance_id, {**os.environ, **self.env})
        self.processors.append(proc)
        return proc

    def maker(self) -> Maker:
        refused = [
            f"replies.{self.tag}.missing",
            "replies." + "x" * 300,
            "replies.bad name!",
            "",
            self.ledger.entries_topic,
            self.engine.dlq_topic,
        ]
        funded = [f"fund-{i:02d}" for i in range(40)]
        payees = [f"payee-{i:03d}" for i in range(60)]
        return Maker(self.schema_ids(), PARTITIONS, Random(SEED), funded, payees, refused)

    def schema_ids(self) -> SchemaIds:
        registry = SchemaRegistryClient({"url": self.cluster.schema_registry_url, "timeout": 10})
        payment = AvroEncoder(
            registry, self.ledger.payments_topic, contract("ledger/payment_request")
        )
        entry = AvroEncoder(registry, self.ledger.entries_topic, contract("ledger/ledger_entry"))
        payment.prepare()
        entry.prepare()
        # Same record name plus one field: it would decode by schema resolution.
        v1 = json.loads(load_schema("ledger/payment_request"))
        lookalike = {**v1, "fields": [*v1["fields"], {"name": "extra", "type": "long"}]}
        other = f"{self.ledger.payments_topic}.other-value"
        alike = registry.register_schema(other, Schema(json.dumps(lookalike), "AVRO"))
        return SchemaIds(payment.schema_id, alike, entry.schema_id)

    def produce(self, cases: Sequence[Case]) -> list[Position]:
        """Send each case to its partition; where each landed, in the order given."""
        producer = Producer(
            {
                "bootstrap.servers": self.cluster.bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,  # a retried send must not add a record
                "linger.ms": 20,
                "message.max.bytes": 1_048_576,  # the ~1 MB records (default 1,000,000)
            }
        )
        landed: list[Position | None] = [None] * len(cases)
        errors: list[str] = []

        def delivered(i: int) -> Callable[[KafkaError | None, Message], None]:
            def report(err: KafkaError | None, msg: Message) -> None:
                if err is not None:
                    errors.append(f"{cases[i].category}: {err.str()}")
                else:
                    landed[i] = (msg.partition() or 0, msg.offset() or 0)

            return report

        for i, c in enumerate(cases):
            assert c.partition is not None
            headers = cast(list[tuple[str, bytes]], c.headers)  # a None value is sent as null
            out = Encoded(self.ledger.payments_topic, c.key, c.value, headers, c.partition)
            produce(producer, out, delivered(i))
            if i % 500 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0 and not errors, errors[:5]
        assert all(at is not None for at in landed)
        return [at for at in landed if at is not None]

    def wait_caught_up(self, proc: LedgerProcessor, timeout: float = 120) -> None:
        try:
            wait_caught_up(self.engine, self.ledger, {proc.name: proc.proc}, timeout=timeout)
        except RunFailed as exc:
            raise AssertionError(f"{exc}\n{proc.tail()}") from None

    def verify(self) -> Report:
        return verify(
            self.cluster.bootstrap_servers,
            self.cluster.schema_registry_url,
            self.ledger,
            self.engine.dlq_topic,
            timeout=60,
        )


@pytest.fixture
def rig(eos_cluster: KafkaCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    state = str(tmp_path_factory.mktemp("state"))
    private = private_ledger(eos_cluster, "bi", PARTITIONS, EOS_STATE_DIR=state)
    r = Rig(eos_cluster, private.tag, private.env, private.engine, private.ledger)
    yield r
    for proc in r.processors:
        if proc.alive():
            proc.kill()


def test_every_bad_payment_ends_once_in_the_dlq_or_rejected_and_no_good_one_is_lost(
    rig: Rig,
) -> None:
    started = time.monotonic()
    check_writer()
    maker = rig.maker()
    proc = rig.start(f"bad-input-{rig.tag}")
    funded = funding(maker)
    funded_at = rig.produce(funded)
    rig.wait_caught_up(proc)  # the accounts hold money before anyone spends it

    cases = build(maker, WIRE + RULES + VALID)
    maker.rng.shuffle(cases)
    share = sum(c.expect.where == DLQ for c in cases) / len(cases)
    assert share < MAX_DLQ_SHARE, f"{share:.0%} of the stream goes to the DLQ"
    cases_at = rig.produce(cases)
    rig.wait_caught_up(proc)
    assert proc.alive(), proc.tail()
    assert proc.stop() == 0, proc.tail()

    s = rig.ledger
    out = collect(
        rig.cluster, rig.engine.dlq_topic, s.payments_topic, s.rejected_topic, s.entries_topic
    )
    order = ["funding", *(name for name, _count, _make in WIRE + RULES + VALID)]
    rows, stray = compare([*funded, *cases], [*funded_at, *cases_at], out, order)
    report = rig.verify()
    verdict = "passed" if report.ok else f"FAILED: {dict(report.counts)}"
    notes = [f"verifier {verdict}; processor exit 0 on SIGTERM; {time.monotonic() - started:.0f}s"]
    text = table(rows, stray, notes)
    print(f"\n{text}\n")
    assert sum(r.count for r in rows if r.expected != POSTED) >= 10_000, text
    assert not stray and not any(r.wrong for r in rows), text
    assert report.ok, report.render()
