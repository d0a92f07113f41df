"""Exactly-once checks on a real cluster, for a test to call after its app has run.

`assert_exactly_once` reads the input and the outputs (and the dead-letter topic) to
their ends, read_committed and read_uncommitted, and fails naming offsets when an input
is in no output (lost), in two (duplicated), or an output has no input. Records are
matched by an id, the record key unless `key` says otherwise; inputs with the same id
count as one (a producer's retry, a payment sent twice on purpose). Give, of each output
topic, one that carries a single record per input it handles: a fan-out topic (two
ledger entries a payment) is checked through the topic that says what became of it.

`assert_no_hanging_transactions` fails when a partition's last stable offset is behind
its high watermark: a transaction left open, which holds every read_committed reader of
that partition back until the broker aborts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from eos.kafka.offsets import Offsets, open_transactions
from eos.kafka.reader import read_topics
from eos.stack.cluster import KafkaCluster
from eos.testing.driver import DeadLetter, Produced

__all__ = [
    "ExactlyOnceViolation",
    "HangingTransaction",
    "Seen",
    "assert_exactly_once",
    "assert_no_hanging_transactions",
    "by_field",
    "read_back",
    "read_dead_letters",
]

SHOWN = 5  # ids named per kind of violation


class ExactlyOnceViolation(AssertionError):
    """Records lost, duplicated or without an input; the message names their offsets."""


class HangingTransaction(AssertionError):
    """A partition's last stable offset is behind its high watermark."""


@dataclass(frozen=True)
class Seen:
    """A record as read back: where it is, its key and its value's bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def key_str(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @classmethod
    def of(cls, msg: Message) -> Seen:
        raw = msg.headers() or []
        items = raw.items() if isinstance(raw, dict) else raw
        headers = tuple(
            (str(k), v if isinstance(v, bytes) else str(v or "").encode()) for k, v in items
        )
        return cls(
            msg.topic() or "",
            msg.partition() or 0,
            msg.offset() or 0,
            msg.key(),
            msg.value(),
            headers,
        )


KeyFn = Callable[[Seen], str | None]


def _by_key(record: Seen) -> str | None:
    return record.key_str


def by_field(cluster: KafkaCluster, name: str) -> KeyFn:
    """An id read from a field of the Avro value (decoded with its writer's schema from
    the registry); None, not counted, for a value that is not Avro or lacks the field."""
    decode = AvroDeserializer(SchemaRegistryClient(cluster.registry_config()))

    def field_of(record: Seen) -> str | None:
        try:
            value = decode(record.value, SerializationContext(record.topic, MessageField.VALUE))
        except Exception:  # not Avro (a dead-lettered malformed input): no id
            return None
        found = value.get(name) if isinstance(value, dict) else None
        return None if found is None else str(found)

    return field_of


def read_back(
    cluster: KafkaCluster,
    topics: Iterable[str],
    isolation: str = "read_committed",
    timeout: float = 60.0,
) -> dict[str, list[Seen]]:
    """Every record of `topics` up to their high watermarks, per topic."""
    out: dict[str, list[Seen]] = {t: [] for t in topics}
    handlers = {t: (lambda msg, t=t: out[t].append(Seen.of(msg))) for t in out}
    missing = read_topics(cluster.client_config(), handlers, timeout, isolation)
    if missing:
        raise ExactlyOnceViolation(f"topic(s) {', '.join(missing)} do not exist")
    return out


def read_dead_letters(
    cluster: KafkaCluster, dlq_topic: str, timeout: float = 60.0
) -> list[DeadLetter]:
    """The committed records of `dlq_topic` as the test driver gives them: the original
    key and bytes, and `reason`, `message`, `source` and `headers` read off them."""
    out: list[DeadLetter] = []
    for rec in read_back(cluster, [dlq_topic], "read_committed", timeout)[dlq_topic]:
        produced = Produced(
            rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.value, dict(rec.headers)
        )
        out.append(DeadLetter(produced))
    return out


def assert_exactly_once(
    cluster: KafkaCluster,
    input_topic: str,
    output_topics: Sequence[str],
    *,
    dlq_topic: str | None = None,
    key: KeyFn = _by_key,
    output_key: KeyFn | None = None,
    timeout: float = 60.0,
) -> None:
    """Every input id in exactly one record across `output_topics` and `dlq_topic`, no
    output without an input, and nothing read_uncommitted whose id read_committed lacks.
    `key` gives an input's id; `output_key` an output's (default: `key`; a dead-letter
    record keeps its input's key and bytes, so `key` reads it)."""
    out_key = output_key or key
    topics = [input_topic, *output_topics, *([dlq_topic] if dlq_topic else [])]
    committed = read_back(cluster, topics, "read_committed", timeout)
    inputs: dict[str, Seen] = {}
    for rec in committed[input_topic]:
        ident = key(rec)
        if ident is not None:
            inputs.setdefault(ident, rec)
    found: dict[str, list[Seen]] = defaultdict(list)
    for topic in topics[1:]:
        pick = key if topic == dlq_topic else out_key
        for rec in committed[topic]:
            ident = pick(rec)
            if ident is not None:
                found[ident].append(rec)
    problems = _accounting(inputs, found)
    uncommitted = read_back(cluster, topics[1:], "read_uncommitted", timeout)
    ghosts = [
        (ident, rec)
        for topic, recs in uncommitted.items()
        for rec in recs
        if (ident := (key if topic == dlq_topic else out_key)(rec)) is not None
        and ident not in found
    ]
    if ghosts:
        named = ", ".join(_list(i, [r]) for i, r in ghosts[:SHOWN])
        problems.append(
            f"{len(ghosts)} record(s) visible read_uncommitted with an id nothing "
            f"committed has: {named}"
        )
    if problems:
        raise ExactlyOnceViolation(
            f"{input_topic} -> {', '.join(topics[1:])}: " + "; ".join(problems)
        )


def _accounting(inputs: dict[str, Seen], found: dict[str, list[Seen]]) -> list[str]:
    lost = [i for i in inputs if i not in found]
    twice = [i for i in inputs if len(found.get(i, [])) > 1]
    orphans = [i for i in found if i not in inputs]
    problems = []
    if lost:
        named = ", ".join(f"{i!r} (input {inputs[i].where})" for i in lost[:SHOWN])
        problems.append(f"{len(lost)} input(s) in no output and not dead-lettered: {named}")
    if twice:
        named = ", ".join(_list(i, found[i]) for i in twice[:SHOWN])
        problems.append(f"{len(twice)} input(s) written more than once: {named}")
    if orphans:
        named = ", ".join(_list(i, found[i]) for i in orphans[:SHOWN])
        problems.append(f"{len(orphans)} output(s) with no input: {named}")
    return problems


def _list(ident: str | None, records: Sequence[Seen]) -> str:
    return f"{ident!r} at {', '.join(r.where for r in records)}"


def assert_no_hanging_transactions(
    cluster: KafkaCluster, topics: Iterable[str], timeout: float = 30.0
) -> None:
    """Every partition of `topics` has its last stable offset at its high watermark."""
    with Offsets(cluster.client_config(), timeout=timeout) as offsets:
        parts = offsets.partitions(topics)
        stable = offsets.last_stable(parts)
        written = offsets.high_watermarks(parts)
    hanging = open_transactions(stable, written)
    if hanging:
        named = ", ".join(
            f"{t}[{p}] (last stable offset {stable[(t, p)]}, high watermark {written[(t, p)]})"
            for t, p in hanging
        )
        raise HangingTransaction(f"transaction(s) left open on {named}")
