"""Create the ledger's topics and register its contracts: `eos ledger setup`."""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from eos.config import EngineSettings
from eos.engine.dlq import replay_failed_topic
from eos.errors import ConfigurationError
from eos.kafka.admin import create_topics, metadata
from eos.kafka.clients import make_admin, make_registry
from eos.ledger.errors import TopicsNotCoPartitioned
from eos.ledger.settings import LedgerSettings
from eos.serde import compat
from eos.serde.avro import AvroContract, record_subject
from eos.serde.schemas import contract


def contracts(s: LedgerSettings) -> dict[str, AvroContract]:
    return {
        s.payments_topic: contract("ledger/payment_request"),
        s.credits_topic: contract("ledger/credit_leg"),
        s.entries_topic: contract("ledger/ledger_entry"),
        s.rejected_topic: contract("ledger/payment_rejection"),
    }


def subjects(s: LedgerSettings) -> dict[str, AvroContract]:
    """Every subject the ledger's processors look up: its topics' (topic-name strategy)
    and the reply-to outcome's (record-name strategy: reply topics are named at run
    time)."""
    outcome = contract("ledger/payment_outcome")
    return {**compat.by_subject(contracts(s)), record_subject(outcome): outcome}


class Replication(NamedTuple):
    """The ledger topics' replication factor and min.insync.replicas."""

    factor: int
    min_insync: int
    brokers: int
    given: bool  # by --replication, not chosen from the cluster's size

    def line(self) -> str:
        why = "given; " if self.given else ""
        plural = "" if self.brokers == 1 else "s"
        return (
            f"replication factor {self.factor} ({why}{self.brokers} broker{plural}), "
            f"min.insync.replicas {self.min_insync}"
        )


def choose_replication(brokers: int, requested: int | None = None) -> Replication:
    """Up to 3 replicas, as many as the cluster has brokers (or `requested`); an acked
    write is on all in-sync replicas but one (at least 1), so one broker may fail without
    losing it or stopping writes."""
    if requested is not None and not 1 <= requested <= brokers:
        raise ConfigurationError(
            f"--replication {requested} is not possible on a cluster of {brokers} "
            f"broker(s): give 1 to {brokers}, or leave it out to use min(3, brokers)"
        )
    factor = requested if requested is not None else max(1, min(3, brokers))
    return Replication(factor, max(1, factor - 1), brokers, requested is not None)


def topic_specs(
    engine: EngineSettings, s: LedgerSettings, partitions: int, replication: Replication
) -> list[NewTopic]:
    compact = {"cleanup.policy": "compact"}
    safe = {"min.insync.replicas": str(replication.min_insync)}
    plain = [
        s.payments_topic,
        s.credits_topic,
        s.entries_topic,
        s.rejected_topic,
        engine.dlq_topic,
        replay_failed_topic(engine.dlq_topic),
    ]
    return [
        *(NewTopic(t, partitions, replication.factor, config=safe) for t in plain),
        *(
            NewTopic(t, partitions, replication.factor, config={**compact, **safe})
            for t in (s.balances_changelog, s.dedup_changelog)
        ),
    ]


def setup(
    engine: EngineSettings, partitions: int, replication: int | None = None, say: object = print
) -> None:
    """`replication` None: min(3, the cluster's brokers)."""
    s = LedgerSettings()
    admin = make_admin(engine)
    cluster = metadata(admin)
    existing = cluster.topics
    chosen = choose_replication(len(cluster.brokers), replication)
    wanted = topic_specs(engine, s, partitions, chosen)
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
        print(chosen.line())
        for topic in create_topics(admin, new):
            print(f"created topic {topic}")
    ids = compat.register_subjects(make_registry(engine), subjects(s))
    for subject, schema_id in ids.items():
        print(f"registered {subject} (id {schema_id}, BACKWARD)")
