"""One store partition on local disk: a RocksDB (rocksdict) and the changelog offset it
has applied up to, written in the same write batch as the data.

Invariant: the checkpoint is never past what the data holds. Replaying the changelog from
a checkpoint that is behind is harmless (a changelog is a sequence of puts and deletes by
key; applying a suffix again leaves every key at its last write), so whenever an offset
is not known for sure the checkpoint is simply not advanced.

The store never writes a record before its transaction committed (`StateStore` stages
them), so the local data can be behind the committed changelog, never ahead: a SIGKILL
between the commit and the local write leaves the old checkpoint with the old data, and
the next restore reads that transaction again.

A store made for another changelog (another cluster, topic, partition or layout), one
whose checkpoint is past the changelog's end (the topic was recreated or truncated) or
before its start (records were deleted), and one RocksDB cannot open, is wiped and
rebuilt from the changelog.

Ordered stores also keep, locally, each key's place in write order (a sequence number),
so expiry can walk the oldest writes first without holding keys in memory.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
)

from eos.errors import ConfigurationError

__all__ = ["LocalDB", "Write"]

log = logging.getLogger("eos.state")

FORMAT = "1"
_META = "meta"
_ORDER = "order"
_CHECKPOINT = b"checkpoint"
_IDENTITY = b"identity"
_SEQUENCE = b"sequence"

Write = tuple[bytes, bytes | None]  # key, value (None: delete)

# Shared by every store partition of the process, so memory does not grow with the
# number of partitions or keys: memtables and cached blocks are bounded here, apart.
# (Memtables charged to the block cache pushed the filter blocks out of it, and every
# lookup of a new key read them again.)
_CACHE_BYTES = 128 << 20
_WRITE_BUFFERS_BYTES = 64 << 20
_shared: tuple[Cache, WriteBufferManager] | None = None


def _options() -> Options:
    global _shared
    if _shared is None:
        _shared = (Cache(_CACHE_BYTES), WriteBufferManager(_WRITE_BUFFERS_BYTES, False))
    cache, buffers = _shared
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.set_write_buffer_size(16 << 20)
    opts.set_max_write_buffer_number(2)
    opts.set_write_buffer_manager(buffers)
    opts.set_max_open_files(64)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(10, False)  # a new payment id misses without reading a block
    # Partitioned index and filters: a lookup loads the 4 kB partitions it needs, not a
    # whole file's; the top levels stay pinned in the cache.
    table.set_index_type(BlockBasedIndexType.two_level_index_search())
    table.set_partition_filters(True)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_top_level_index_and_filter(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    opts.set_block_based_table_factory(table)
    return opts


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


class LocalDB:
    """A store partition's RocksDB. Keys and values are bytes (the changelog's)."""

    def __init__(self, path: Path, identity: Mapping[str, str], ordered: bool) -> None:
        self.path = path
        self.ordered = ordered
        self._identity = json.dumps({**identity, "format": FORMAT, "ordered": ordered})
        self._db = self._open()
        self._meta = self._db.get_column_family_handle(_META)
        self._order = self._db.get_column_family_handle(_ORDER)
        self.checkpoint = 0
        self._sequence = 0
        self._load()

    def _open(self) -> Rdict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        opts = _options()
        columns = {_META: _options(), _ORDER: _options()}
        try:
            return Rdict(str(self.path), opts, column_families=columns)
        except Exception as exc:  # corrupt or unreadable: the changelog has it all
            if "lock" in str(exc).lower():  # in use: never wipe another process's store
                raise ConfigurationError(
                    f"local store {self.path} is in use by another process ({exc}); give "
                    "each process its own EOS_INSTANCE_ID or EOS_STATE_DIR"
                ) from exc
            log.warning("local store %s cannot be opened (%s); rebuilding it", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            return Rdict(str(self.path), opts, column_families=columns)

    def _load(self) -> None:
        meta = self._db.get_column_family(_META)
        stored, checkpoint, sequence = (meta.get(k) for k in (_IDENTITY, _CHECKPOINT, _SEQUENCE))
        if stored is None:
            meta.put(_IDENTITY, self._identity.encode())
        del meta  # a view holds the DB open, and a wipe must close it
        if stored is not None and stored.decode() != self._identity:
            log.warning(
                "local store %s was made for %s, not %s; rebuilding it",
                self.path,
                stored.decode(),
                self._identity,
            )
            self.wipe()
            return
        self.checkpoint = int.from_bytes(checkpoint, "big") if checkpoint else 0
        self._sequence = int.from_bytes(sequence, "big") if sequence else 0

    def wipe(self) -> None:
        """Forget everything: the store is rebuilt from offset 0 of its changelog."""
        self.close()
        Rdict.destroy(str(self.path), _options())
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = self._open()
        self._meta = self._db.get_column_family_handle(_META)
        self._order = self._db.get_column_family_handle(_ORDER)
        self.checkpoint = self._sequence = 0
        batch = WriteBatch(raw_mode=True)
        batch.put(_IDENTITY, self._identity.encode(), self._meta)
        self._db.write(batch)

    def close(self) -> None:
        # Column family handles share the DB: drop them, or RocksDB keeps its lock.
        del self._meta, self._order
        self._db.close()
        del self._db

    def get(self, key: bytes) -> bytes | None:
        row: bytes | None = self._db.get(key)
        if row is None or not self.ordered:
            return row
        return row[8:]

    def apply(self, writes: Iterable[Write], checkpoint: int | None) -> int:
        """Apply `writes` in order, and move the checkpoint to `checkpoint` (None: leave
        it), atomically. Returns how many writes there were."""
        batch = WriteBatch(raw_mode=True)
        count = 0
        sequence = self._sequence
        for key, value in writes:
            count += 1
            if value is None:
                batch.delete(key)
            elif self.ordered:
                sequence += 1
                batch.put(key, _u64(sequence) + value)
                batch.put(_u64(sequence), key, self._order)
            else:
                batch.put(key, value)
        if sequence != self._sequence:
            batch.put(_SEQUENCE, _u64(sequence), self._meta)
        if checkpoint is not None:
            batch.put(_CHECKPOINT, _u64(checkpoint), self._meta)
        self._db.write(batch)
        self._sequence = sequence
        if checkpoint is not None:
            self.checkpoint = checkpoint
        return count

    def in_write_order(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of an ordered store, oldest write first. Index entries of keys
        written again or deleted since are dropped on the way (the index is local)."""
        if not self.ordered:
            raise TypeError(f"local store {self.path} does not keep write order")
        order = self._db.get_column_family(_ORDER)
        items = order.items()
        stale = WriteBatch(raw_mode=True)
        try:
            for seq, key in items:
                row = self._db.get(key)
                if row is None or row[:8] != seq:
                    stale.delete(seq, self._order)
                    continue
                yield key, row[8:]
        finally:
            if not stale.is_empty():
                self._db.write(stale)

    def stats(self) -> dict[str, int]:
        """Estimated keys, bytes on disk, and bytes compaction still has to rewrite (a
        bulk restore leaves a debt that background compaction pays off)."""
        prop = self._db.property_int_value
        return {
            "keys": prop("rocksdb.estimate-num-keys") or 0,
            "bytes": prop("rocksdb.total-sst-files-size") or 0,
            "pending": prop("rocksdb.estimate-pending-compaction-bytes") or 0,
            "compacting": prop("rocksdb.num-running-compactions") or 0,
        }
