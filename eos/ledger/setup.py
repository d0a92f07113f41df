"""Create the ledger's topics and register its contracts: `eos ledger setup`."""

from __future__ import annotations

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from eos.config import EngineSettings
from eos.kafka.clients import make_admin, make_registry
from eos.ledger.errors import TopicsNotCoPartitioned
from eos.ledger.settings import LedgerSettings
from eos.serde import compat
from eos.serde.avro import AvroContract
from eos.serde.schemas import contract


def contracts(s: LedgerSettings) -> dict[str, AvroContract]:
    return {
        s.payments_topic: contract("ledger/payment_request"),
        s.credits_topic: contract("ledger/credit_leg"),
        s.entries_topic: contract("ledger/ledger_entry"),
        s.rejected_topic: contract("ledger/payment_rejection"),
    }


def topic_specs(
    engine: EngineSettings, s: LedgerSettings, partitions: int, replication: int
) -> list[NewTopic]:
    compact = {"cleanup.policy": "compact"}
    safe = {"min.insync.replicas": str(min(2, replication))}
    plain = [
        s.payments_topic,
        s.credits_topic,
        s.entries_topic,
        s.rejected_topic,
        engine.dlq_topic,
        f"{engine.dlq_topic}.replay-failed",
    ]
    return [
        *(NewTopic(t, partitions, replication, config=safe) for t in plain),
        *(
            NewTopic(t, partitions, replication, config={**compact, **safe})
            for t in (s.balances_changelog, s.dedup_changelog)
        ),
    ]


def setup(engine: EngineSettings, partitions: int, replication: int, say: object = print) -> None:
    s = LedgerSettings()
    admin = make_admin(engine)
    existing = admin.list_topics(timeout=30).topics
    wanted = topic_specs(engine, s, partitions, replication)
    for spec in wanted:
        if spec.topic in existing:
            have = len(existing[spec.topic].partitions)
            if have != partitions and spec.topic != engine.dlq_topic:
                raise TopicsNotCoPartitioned(
                    f"topic {spec.topic} exists with {have} partitions, not {partitions}; "
                    "the ledger needs its topics co-partitioned"
                )
    new = [spec for spec in wanted if spec.topic not in existing]
    if new:
        for topic, future in admin.create_topics(new, operation_timeout=30).items():
            future.result(timeout=60)
            print(f"created topic {topic}")
    ids = compat.register(make_registry(engine), contracts(s))
    for subject, schema_id in ids.items():
        print(f"registered {subject} (id {schema_id}, BACKWARD)")
