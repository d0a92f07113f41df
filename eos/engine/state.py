"""State that is exactly as durable as the outputs: a store backed by a changelog topic.

Each store keeps, per input partition, a dict of JSON values in memory. A batch's
changes are staged; they reach the compacted changelog topic as records of the batch's
own transaction (same partition number as the input), and are applied in memory only
after that transaction commits. On assignment a partition's state is rebuilt from its
changelog partition, read_committed, so it matches the committed input offsets exactly:
no posting is lost or applied twice across SIGKILL or rebalance. The rebuild reads to the
high watermark, not to the first end-of-partition: a read_committed consumer reports that
end before a transaction still open (say a stalled former owner's), and the committed
offsets it will be matched with wait for that transaction too.

Inputs that share a store must be co-partitioned (same partition count, same keys):
partition p of every input maps to changelog partition p.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import Message

from eos.kafka.clients import connection_config
from eos.kafka.produce import Encoded
from eos.kafka.reader import read_topics

log = logging.getLogger("eos.state")

_DELETED = object()
Key = tuple[int, str]
Staged = tuple[Any, bytes | None]  # the value (or _DELETED) and its changelog payload


class StateStore:
    def __init__(self, name: str, changelog_topic: str) -> None:
        self.name = name
        self.changelog_topic = changelog_topic
        self._data: dict[int, dict[str, Any]] = {}
        self._batch: dict[Key, Staged] = {}
        self._record: dict[Key, Staged] = {}
        self._reader_config: dict[str, Any] = {}

    def bind(self, reader_config: Mapping[str, Any]) -> None:
        """Where to restore from: the connection settings for the changelog reader."""
        self._reader_config = connection_config(reader_config)

    # -- what a transform uses ------------------------------------------------------------

    def get(self, partition: int, key: str, default: Any = None) -> Any:
        for layer in (self._record, self._batch):
            if (partition, key) in layer:
                value = layer[(partition, key)][0]
                return default if value is _DELETED else value
        return self._data.get(partition, {}).get(key, default)

    def put(self, partition: int, key: str, value: Any) -> None:
        """Stage a write. Encoded here, so a value JSON cannot hold fails the transform
        that wrote it (and only that record), not the batch's commit."""
        try:
            payload = json.dumps(value).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"store {self.name}: value for {key!r} is not JSON: {exc}") from exc
        self._stage(partition, key, (value, payload))

    def delete(self, partition: int, key: str) -> None:
        self._stage(partition, key, (_DELETED, None))

    def _stage(self, partition: int, key: str, staged: Staged) -> None:
        if partition not in self._data:
            raise KeyError(f"store {self.name}: partition {partition} is not assigned here")
        self._record[(partition, key)] = staged

    def committed_items(self, partition: int) -> Iterator[tuple[str, Any]]:
        """Committed entries of a partition, oldest write first (for expiry scans)."""
        return iter(list(self._data.get(partition, {}).items()))

    # -- what the engine calls ------------------------------------------------------------

    def begin_batch(self) -> None:
        self._batch.clear()
        self._record.clear()

    def end_record(self, ok: bool) -> None:
        """Keep a record's writes if it succeeded; a failed record leaves no trace."""
        if ok:
            self._batch.update(self._record)
        self._record.clear()

    def changelog_records(self) -> list[Encoded]:
        return [
            Encoded(self.changelog_topic, key.encode(), payload, [], partition)
            for (partition, key), (_value, payload) in self._batch.items()
        ]

    def commit_batch(self) -> None:
        """The batch's transaction committed: make its writes the store's state."""
        for (partition, key), (value, _payload) in self._batch.items():
            data = self._data.setdefault(partition, {})
            if value is _DELETED:
                data.pop(key, None)
            else:
                data.pop(key, None)  # re-insert so dict order stays write order
                data[key] = value
        self.begin_batch()

    def assigned(self, partitions: Iterable[int], timeout: float) -> None:
        new = sorted(set(partitions) - set(self._data))
        if new:
            self._restore(new, timeout)

    def revoked(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._data.pop(partition, None)
        self.begin_batch()

    def _restore(self, partitions: list[int], timeout: float) -> None:
        started = time.monotonic()
        restored: dict[int, dict[str, Any]] = {p: {} for p in partitions}
        count = 0

        def apply(msg: Message) -> None:
            nonlocal count
            data = restored[msg.partition() or 0]
            key = (msg.key() or b"").decode()
            data.pop(key, None)  # re-insert so dict order stays write order
            value = msg.value()
            if value is not None:
                data[key] = json.loads(value)
            count += 1

        try:
            missing = read_topics(
                self._reader_config,
                {self.changelog_topic: apply},
                timeout,
                partitions={self.changelog_topic: partitions},
            )
        except TimeoutError as exc:
            raise RuntimeError(
                f"restoring store {self.name} from {self.changelog_topic}: {exc}"
            ) from exc
        if missing:
            raise RuntimeError(
                f"store {self.name}: changelog topic {self.changelog_topic} does not exist; "
                "create it (compacted, as many partitions as the inputs) before starting"
            )
        self._data.update(restored)
        log.info(
            "restored store %s partitions %s from %d changelog records in %.1fs",
            self.name,
            partitions,
            count,
            time.monotonic() - started,
        )
