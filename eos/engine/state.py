"""State that is exactly as durable as the outputs: a store backed by a changelog topic.

Each store partition lives on local disk (`LocalDB`: a RocksDB per store partition under
the state directory) with the changelog offset it has applied up to. A batch's changes
are staged; they reach the compacted changelog topic as records of the batch's own
transaction (same partition number as the input), and are written locally only after
that transaction commits, with the offset the changelog gave the last of them. So the
local store is never ahead of the committed changelog; after a SIGKILL between the
commit and the local write it is behind, and the restore reads that transaction again.

A partition is restored (`eos.engine.restore.Restorer`, in the run loop, not in the
rebalance callback) from its local checkpoint to the changelog's high watermark,
read_committed; only then does the transform see its records. Reading to the high
watermark, not to the first end-of-partition, waits for a transaction still open (a
stalled former owner's): the committed offsets it is matched with wait for it too.

Inputs that share a store must be co-partitioned (same partition count, same keys):
partition p of every input maps to changelog partition p.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from eos.engine.localdb import LocalDB, Write
from eos.kafka.produce import Encoded

__all__ = ["StateStore"]

log = logging.getLogger("eos.state")

_DELETED = object()
CACHED_PER_PARTITION = 100_000  # payloads kept in memory per store partition, at most
Key = tuple[int, str]
Staged = tuple[Any, bytes | None]  # the value (or _DELETED) and its changelog payload


class StateStore:
    """A store of JSON values by string key, per partition. `ordered`: the store can be
    walked oldest write first (`committed_items`), for expiry."""

    def __init__(self, name: str, changelog_topic: str, ordered: bool = False) -> None:
        self.name = name
        self.changelog_topic = changelog_topic
        self.ordered = ordered
        self._dbs: dict[int, LocalDB] = {}
        self._ready: set[int] = set()
        self._batch: dict[Key, Staged] = {}
        self._record: dict[Key, Staged] = {}
        self._directory: Path | None = None
        self._identity: dict[str, str] = {}
        # Committed payloads read before, per ready partition: a hot key (an account's
        # balance) is not fetched from RocksDB for every record. Only values that exist
        # (a new key is looked up once), updated by commit_batch, gone with the partition.
        self._cache: dict[int, dict[str, bytes]] = {}

    def bind(self, directory: Path, identity: Mapping[str, str]) -> None:
        """Where its partitions live on disk, and what they must have been made for (the
        cluster, the changelog topic's id): a local store made for another is rebuilt."""
        self._directory = directory / self.name
        self._identity = {**identity, "topic": self.changelog_topic}

    # -- what a transform uses ------------------------------------------------------------

    def get(self, partition: int, key: str, default: Any = None) -> Any:
        for layer in (self._record, self._batch):
            if (partition, key) in layer:
                value = layer[(partition, key)][0]
                return default if value is _DELETED else value
        cache = self._cache.get(partition)
        payload = None if cache is None else cache.get(key)
        if payload is None:
            payload = self._db(partition).get(key.encode())
            if payload is None:
                return default
            if cache is not None:
                if len(cache) >= CACHED_PER_PARTITION:
                    cache.clear()
                cache[key] = payload
        # Decoded on every read: a value handed out is the caller's to change.
        return json.loads(payload)

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
        self._db(partition)
        self._record[(partition, key)] = staged

    def _db(self, partition: int) -> LocalDB:
        if partition not in self._ready:
            raise KeyError(f"store {self.name}: partition {partition} is not ready here")
        return self._dbs[partition]

    def committed_items(self, partition: int) -> Iterator[tuple[str, Any]]:
        """Committed entries of a partition, oldest write first (for expiry scans)."""
        for key, payload in self._db(partition).in_write_order():
            yield key.decode(), json.loads(payload)

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

    def commit_batch(self, delivered: Mapping[tuple[str, int], int] | None = None) -> None:
        """The batch's transaction committed: write its changes locally. `delivered`
        gives the changelog offset of the last record of each partition it wrote; the
        checkpoint moves past it (unknown: it stays, which is safe, see LocalDB)."""
        writes: dict[int, list[Write]] = {}
        for (partition, key), (_value, payload) in self._batch.items():
            writes.setdefault(partition, []).append((key.encode(), payload))
            cache = self._cache.get(partition)
            if cache is not None and key in cache:
                if payload is None:
                    del cache[key]
                else:
                    cache[key] = payload
        for partition, changes in writes.items():
            last = (delivered or {}).get((self.changelog_topic, partition))
            self._dbs[partition].apply(changes, None if last is None else last + 1)
        self.begin_batch()

    def stats(self) -> dict[str, int]:
        """Keys, bytes on disk and compaction still pending, over its open partitions."""
        out = {"keys": 0, "bytes": 0, "pending": 0, "compacting": 0}
        for db in self._dbs.values():
            for name, value in db.stats().items():
                out[name] += value
        return out

    # -- what the restorer calls ------------------------------------------------------------

    def open(self, partition: int) -> LocalDB:
        """The partition's local store, opened if it is not (not ready until restored)."""
        db = self._dbs.get(partition)
        if db is None:
            if self._directory is None:
                raise RuntimeError(f"store {self.name} was not bound to a state directory")
            identity = {**self._identity, "partition": str(partition)}
            db = LocalDB(self._directory / str(partition), identity, self.ordered)
            self._dbs[partition] = db
        return db

    def ready(self, partition: int) -> bool:
        return partition in self._ready

    def mark_ready(self, partition: int) -> None:
        self._ready.add(partition)
        self._cache[partition] = {}

    def close(self, partitions: set[int] | None = None) -> None:
        """Close local stores (all when None); their files stay for a later assignment."""
        for partition in list(self._dbs) if partitions is None else partitions:
            self._ready.discard(partition)
            self._cache.pop(partition, None)
            db = self._dbs.pop(partition, None)
            if db is not None:
                db.close()
        self.begin_batch()
