"""BatchRunner: which records become outputs, which are dead-lettered, and when it stops."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from eos.engine.api import InputRecord, OutputRecord, PermanentError, TransientError
from eos.engine.batch import BatchRunner, RecordTransient, RecordUnexpected, key_of
from eos.engine.records import Consumed
from eos.serde.avro import NOT_CACHED, DecodeError


def _rec(offset: int, value: bytes, partition: int = 0) -> Consumed:
    return Consumed("in", partition, offset, 1_700_000_000_000 + offset, b"k%d" % offset, value, [])


def transform(record: InputRecord) -> list[OutputRecord]:
    """Raw bytes in (no decoder), bytes out (no encoder): the value selects the behaviour."""
    value = record.value
    assert isinstance(value, bytes)
    if value == b"reject":
        raise PermanentError(f"record {record.offset} is invalid")
    if value == b"flaky":
        raise TransientError("dependency down")
    if value == b"crash":
        raise ZeroDivisionError("bug")
    return [OutputRecord("out", record.key, value.upper(), {"src": str(record.offset)})]


def _runner(max_attempts: int = 3) -> BatchRunner:
    return BatchRunner(transform, {"in": None}, {}, max_attempts)


def test_good_records_become_encoded_outputs_in_input_order() -> None:
    records = [_rec(i, b"v%d" % i) for i in range(5)]
    result = _runner().run(records, {})
    assert result.failures == []
    assert [tuple(o[:4]) for o in result.outputs] == [
        ("out", b"k%d" % i, b"V%d" % i, [("src", str(i).encode())]) for i in range(5)
    ]
    assert result.outcomes() == [False] * 5


def test_permanent_error_is_a_failure_with_its_reason_and_no_output() -> None:
    records = [_rec(0, b"a"), _rec(1, b"reject"), _rec(2, b"c")]
    result = _runner().run(records, {})
    assert [o[2] for o in result.outputs] == [b"A", b"C"]
    [failure] = result.failures
    assert failure.record is records[1]
    assert failure.reason == "PERMANENT"
    assert failure.attempts == 1
    assert isinstance(failure.error, PermanentError)
    assert "record 1 is invalid" in str(failure.error)
    assert result.outcomes() == [False, True, False]


def test_transient_error_below_max_attempts_stops_the_batch_for_a_retry() -> None:
    records = [_rec(0, b"a"), _rec(1, b"flaky"), _rec(2, b"c")]
    with pytest.raises(RecordTransient) as info:
        _runner(max_attempts=3).run(records, {key_of(records[1]): 1})  # this is attempt 2
    assert info.value.record is records[1]
    assert isinstance(info.value.error, TransientError)


def test_transient_error_at_max_attempts_is_transient_exhausted() -> None:
    records = [_rec(0, b"a"), _rec(1, b"flaky"), _rec(2, b"c")]
    result = _runner(max_attempts=3).run(records, {key_of(records[1]): 2})  # attempt 3 of 3
    assert [o[2] for o in result.outputs] == [b"A", b"C"]
    [failure] = result.failures
    assert failure.record is records[1]
    assert failure.reason == "TRANSIENT_EXHAUSTED"
    assert failure.attempts == 3


def test_attempts_of_other_records_do_not_count() -> None:
    records = [_rec(0, b"flaky"), _rec(1, b"flaky")]
    with pytest.raises(RecordTransient) as info:
        _runner(max_attempts=2).run(records, {key_of(records[1]): 5})
    assert info.value.record is records[0]


def test_unexpected_exception_stops_the_batch_without_isolation() -> None:
    records = [_rec(0, b"a"), _rec(1, b"crash"), _rec(2, b"c")]
    with pytest.raises(RecordUnexpected) as info:
        _runner().run(records, {})
    assert info.value.record is records[1]
    assert isinstance(info.value.error, ZeroDivisionError)
    assert "ZeroDivisionError" in str(info.value)


def test_unexpected_exception_with_isolation_condemns_only_that_record() -> None:
    records = [_rec(0, b"a"), _rec(1, b"crash", partition=1), _rec(2, b"c"), _rec(3, b"d")]
    result = _runner().run(records, {}, isolate=True)
    assert [(o[1], o[2]) for o in result.outputs] == [(b"k0", b"A"), (b"k2", b"C"), (b"k3", b"D")]
    [failure] = result.failures
    assert failure.record is records[1]
    assert failure.reason == "UNEXPECTED"
    assert isinstance(failure.error, ZeroDivisionError)
    assert result.outcomes() == [False, True, False, False]


def test_an_output_value_that_is_not_bytes_needs_an_output_contract() -> None:
    def to_dict(record: InputRecord) -> list[OutputRecord]:
        return [OutputRecord("nowhere", None, {"a": 1})]

    result = BatchRunner(to_dict, {"in": None}, {}, 3).run([_rec(0, b"x")], {})
    [failure] = result.failures
    assert failure.reason == "PERMANENT"
    assert "no output contract" in str(failure.error)


class _Topics:
    """Output topics that exist, counting the questions."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.asked: list[str] = []
        self.forgotten = 0

    def __call__(self, topic: str) -> bool:
        self.asked.append(topic)
        return topic in self.existing

    def forget(self) -> None:
        self.forgotten += 1


def test_an_output_topic_is_asked_after_once_per_batch() -> None:
    topics = _Topics({"out"})
    runner = BatchRunner(transform, {"in": None}, {}, 3, topics=topics)
    result = runner.run([_rec(i, b"v") for i in range(4)], {})
    assert len(result.outputs) == 4 and topics.asked == ["out"]
    runner.run([_rec(9, b"v")], {})
    assert topics.asked == ["out", "out"]  # a new batch asks again


def test_an_output_topic_gone_fails_its_records_and_is_asked_after_each_time() -> None:
    topics = _Topics(set())
    runner = BatchRunner(transform, {"in": None}, {}, 3, topics=topics)
    result = runner.run([_rec(0, b"a"), _rec(1, b"b")], {})
    assert [f.reason for f in result.failures] == ["UNKNOWN_TOPIC", "UNKNOWN_TOPIC"]
    assert topics.asked == ["out", "out"]  # a missing topic is not remembered as there
    topics.existing.add("out")
    assert runner.run([_rec(2, b"c")], {}).failures == []


def test_a_topic_said_gone_by_a_produce_is_asked_after_again() -> None:
    topics = _Topics({"out"})
    runner = BatchRunner(transform, {"in": None}, {}, 3, topics=topics)
    runner.run([_rec(0, b"a")], {})
    runner.topics_changed()
    topics.existing.clear()
    assert topics.forgotten == 1
    assert [f.reason for f in runner.run([_rec(1, b"b")], {}).failures] == ["UNKNOWN_TOPIC"]


class _Decoder:
    """Upper-cases values; refuses b"bad"; knows writer schemas only once `known`."""

    def __init__(self, known: bool = True) -> None:
        self.known = known
        self.calls: list[tuple[bytes, bool]] = []

    def decode(self, data: bytes, cached_only: bool = False) -> Any:
        self.calls.append((data, cached_only))
        if cached_only and not self.known:
            return NOT_CACHED
        if data == b"bad":
            raise DecodeError("MALFORMED_AVRO", "not Avro")
        return data.upper()


def _decoding(decoder: _Decoder) -> BatchRunner:
    def echo(record: InputRecord) -> list[OutputRecord]:
        return [OutputRecord("out", record.key, record.value)]

    return BatchRunner(echo, {"in": cast(Any, decoder)}, {}, 3)


def test_values_decoded_ahead_are_taken_by_their_batch_once() -> None:
    decoder = _Decoder()
    runner = _decoding(decoder)
    records = [_rec(i, b"v%d" % i) for i in range(250)]
    list(runner.decode_ahead(records))
    assert len(decoder.calls) == 250
    result = runner.run(records, {})
    assert [o.value for o in result.outputs] == [b"V%d" % i for i in range(250)]
    assert len(decoder.calls) == 250  # nothing decoded twice
    runner.run(records, {})  # a batch redone decodes again
    assert len(decoder.calls) == 500


def test_a_record_that_fails_ahead_is_decoded_again_and_dead_lettered_for_it() -> None:
    decoder = _Decoder()
    runner = _decoding(decoder)
    records = [_rec(0, b"a"), _rec(1, b"bad")]
    list(runner.decode_ahead(records))
    result = runner.run(records, {})
    [failure] = result.failures
    assert failure.record is records[1] and failure.reason == "MALFORMED_AVRO"
    assert decoder.calls == [(b"a", True), (b"bad", True), (b"bad", False)]


def test_nothing_is_decoded_ahead_that_would_ask_the_registry() -> None:
    decoder = _Decoder(known=False)
    runner = _decoding(decoder)
    records = [_rec(0, b"a")]
    list(runner.decode_ahead(records))
    assert [o.value for o in runner.run(records, {}).outputs] == [b"A"]
    assert decoder.calls == [(b"a", True), (b"a", False)]


def test_a_value_decoded_ahead_goes_to_its_own_record_only() -> None:
    decoder = _Decoder()
    runner = _decoding(decoder)
    first = _rec(0, b"a")
    list(runner.decode_ahead([first]))
    again = Consumed(*first)  # read again after a rewind: another record object
    runner.run([again], {})
    assert decoder.calls == [(b"a", True), (b"a", False)]


def test_raw_bytes_in_are_not_decoded_ahead() -> None:
    assert list(_runner().decode_ahead([_rec(0, b"a")])) == []


def test_decoding_ahead_yields_about_every_millisecond() -> None:
    class Slow(_Decoder):
        def decode(self, data: bytes, cached_only: bool = False) -> Any:
            time.sleep(0.002)
            return super().decode(data, cached_only)

    runner = _decoding(Slow())
    steps = list(runner.decode_ahead([_rec(i, b"v") for i in range(5)]))
    assert len(steps) >= 5  # one per record that took longer than a step


def test_values_of_records_no_longer_coming_are_let_go() -> None:
    decoder = _Decoder()
    runner = _decoding(decoder)
    dropped, kept = _rec(0, b"a"), _rec(1, b"b")
    list(runner.decode_ahead([dropped, kept]))
    list(runner.decode_ahead([kept]))  # a rebalance took `dropped` away
    runner.run([dropped, kept], {})
    assert decoder.calls == [(b"a", True), (b"b", True), (b"a", False)]
