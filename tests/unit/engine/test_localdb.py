"""A store partition on disk: its checkpoint moves with its data, never ahead of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from eos.engine.localdb import LocalDB
from eos.engine.state import StateStore
from eos.errors import ConfigurationError
from eos.kafka.produce import Encoded, LastOffsets
from tests.unit.stores import make_ready

ID = {"cluster": "c1", "topic": "t.changelog", "partition": "0"}


def test_data_and_checkpoint_survive_a_reopen(tmp_path: Path) -> None:
    db = LocalDB(tmp_path / "0", ID, ordered=False)
    db.apply([(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"b", None)], 42)
    db.close()
    db = LocalDB(tmp_path / "0", ID, ordered=False)
    assert (db.get(b"a"), db.get(b"b"), db.checkpoint) == (b"3", None, 42)
    db.apply([(b"c", b"4")], None)  # an offset not known: the checkpoint stays
    assert db.checkpoint == 42
    db.close()


def test_a_store_made_for_another_changelog_is_wiped(tmp_path: Path) -> None:
    db = LocalDB(tmp_path / "0", ID, ordered=False)
    db.apply([(b"a", b"1")], 10)
    db.close()
    db = LocalDB(tmp_path / "0", {**ID, "cluster": "c2"}, ordered=False)
    assert (db.get(b"a"), db.checkpoint) == (None, 0)
    db.close()


def test_a_corrupt_store_is_rebuilt(tmp_path: Path) -> None:
    db = LocalDB(tmp_path / "0", ID, ordered=False)
    db.apply([(b"a", b"1")], 10)
    db.close()
    (tmp_path / "0" / "CURRENT").write_text("garbage")
    db = LocalDB(tmp_path / "0", ID, ordered=False)
    assert (db.get(b"a"), db.checkpoint) == (None, 0)
    db.close()


def test_a_store_in_use_by_another_is_refused_not_wiped(tmp_path: Path) -> None:
    db = LocalDB(tmp_path / "0", ID, ordered=False)
    db.apply([(b"a", b"1")], 10)
    with pytest.raises(ConfigurationError, match="in use by another process"):
        LocalDB(tmp_path / "0", ID, ordered=False)
    assert db.get(b"a") == b"1"
    db.close()


def test_an_ordered_store_walks_its_keys_oldest_write_first(tmp_path: Path) -> None:
    db = LocalDB(tmp_path / "0", ID, ordered=True)
    db.apply([(b"z", b"1"), (b"a", b"2"), (b"m", b"3")], 3)
    db.apply([(b"z", b"4"), (b"m", None)], 5)  # z written again, m deleted
    assert list(db.in_write_order()) == [(b"a", b"2"), (b"z", b"4")]
    assert db.get(b"z") == b"4"
    db.close()


def test_a_committed_batch_moves_the_checkpoint_past_its_last_changelog_record(
    tmp_path: Path,
) -> None:
    store = make_ready(StateStore("s", "s.changelog"), [0, 1], tmp_path)
    store.put(0, "a", 1)
    store.put(1, "b", 2)
    store.end_record(True)
    store.commit_batch({("s.changelog", 0): 99})
    store.put(0, "a", 5)
    store.end_record(True)
    store.commit_batch({})  # the delivery report was not seen: the checkpoint stays
    assert store.get(0, "a") == 5 and store.get(1, "b") == 2
    assert store.open(0).checkpoint == 100
    assert store.open(1).checkpoint == 0
    store.close()


def test_only_the_last_record_of_each_watched_partition_is_asked_for_its_offset() -> None:
    outputs = [
        Encoded("out", b"k", b"v", []),
        Encoded("s.changelog", b"a", b"1", [], 0),
        Encoded("s.changelog", b"b", b"1", [], 1),
        Encoded("s.changelog", b"c", b"1", [], 0),
    ]
    assert LastOffsets(["s.changelog"]).last_of_each(outputs) == {2, 3}
    assert LastOffsets([]).last_of_each(outputs) == set()


def test_a_value_read_once_is_served_from_memory_until_a_commit_changes_it(
    tmp_path: Path,
) -> None:
    store = make_ready(StateStore("s", "s.changelog"), [0], tmp_path)
    store.put(0, "k", {"b": 1})
    store.end_record(True)
    store.commit_batch()
    assert store.get(0, "k") == {"b": 1}
    reads: list[bytes] = []
    db = store.open(0)
    real_get = db.get

    def counted(key: bytes) -> bytes | None:
        reads.append(key)
        return real_get(key)

    db.get = counted  # type: ignore[method-assign]
    assert store.get(0, "k") == {"b": 1}
    assert reads == []  # from memory
    store.put(0, "k", {"b": 2})
    store.end_record(True)
    store.commit_batch()
    assert store.get(0, "k") == {"b": 2} and reads == []  # the commit replaced it
    store.delete(0, "k")
    store.end_record(True)
    store.commit_batch()
    assert store.get(0, "k") is None
    # A value handed out is the caller's: changing it changes nothing stored.
    store.put(0, "m", {"b": 3})
    store.end_record(True)
    store.commit_batch()
    store.get(0, "m")["b"] = 99
    assert store.get(0, "m") == {"b": 3}


def test_a_partition_closed_and_restored_again_is_read_from_disk(tmp_path: Path) -> None:
    store = make_ready(StateStore("s", "s.changelog"), [0], tmp_path)
    store.put(0, "k", {"b": 1})
    store.end_record(True)
    store.commit_batch()
    assert store.get(0, "k") == {"b": 1}
    store.close({0})
    # Another owner's writes reach the local store through the restore meanwhile.
    store.open(0).apply([(b"k", b'{"b": 5}')], None)
    store.mark_ready(0)
    assert store.get(0, "k") == {"b": 5}
