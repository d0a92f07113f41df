"""The test driver runs an App's records through the engine's batch path, no broker."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from eos.config import EngineSettings
from eos.engine.api import InputRecord, OutputRecord
from eos.engine.app import App
from eos.engine.state import StateStore
from eos.examples import events
from eos.serde.avro import AvroContract
from eos.testing.driver import DriverError, TestDriver

OUT = events.OUTPUT


def event(n: int, action: str = "ok") -> dict[str, object]:
    return {
        "id": f"e{n}",
        "seq": n,
        "account": "acc-1",
        "amount": 1000 + n,
        "action": action,
        "created_at_ms": 1,
        "payload": "",
    }


@pytest.fixture
def driver() -> TestDriver:
    return TestDriver(events.build, EngineSettings(instance_id="t-1", retry_max_attempts=3))


def test_a_good_record_is_transformed_and_encoded_with_its_output_contract(
    driver: TestDriver,
) -> None:
    step = driver.pipe(events.INPUT, event(1), key="e1")
    assert [p.value["fee"] for p in step.to(OUT)] == [10]
    assert step.outputs[0].key == b"e1"
    assert step.outputs[0].raw is not None and step.outputs[0].raw[0] == 0  # wire format
    assert step.dead_letters == []
    assert driver.output(OUT) == step.outputs


def test_a_rejected_record_is_dead_lettered_with_its_headers_and_original_bytes(
    driver: TestDriver,
) -> None:
    driver.pipe(events.INPUT, event(1), key="e1")
    step = driver.pipe(events.INPUT, event(2, "reject"), key="e2", headers={"trace": "abc"})
    assert step.outputs == []
    [letter] = step.dead_letters
    assert letter.reason == "PERMANENT"
    assert "marked for rejection" in letter.message
    assert letter.source == (events.INPUT, 0, 1)
    assert letter.headers["trace"] == "abc"
    assert letter.headers["eos.dlq.instance"] == "t-1"
    assert letter.record.key == b"e2"
    assert letter.record.topic == driver.settings.dlq_topic
    assert driver.dead_letters() == [letter]


def test_bytes_that_are_not_avro_are_dead_lettered_as_not_wire_format(
    driver: TestDriver,
) -> None:
    [letter] = driver.pipe(events.INPUT, b"not avro", key="x").dead_letters
    assert letter.reason == "NOT_WIRE_FORMAT"
    assert letter.record.raw == b"not avro"


def test_transient_failures_are_retried_then_dead_lettered_once_exhausted(
    driver: TestDriver,
) -> None:
    assert len(driver.pipe(events.INPUT, event(1, "flaky:2")).to(OUT)) == 1
    [letter] = driver.pipe(events.INPUT, event(2, "flaky:9")).dead_letters
    assert letter.reason == "TRANSIENT_EXHAUSTED"
    assert letter.headers["eos.dlq.attempts"] == "3"


def test_an_unexpected_exception_condemns_only_its_record(driver: TestDriver) -> None:
    step = driver.pipe_all(
        events.INPUT, [("a", event(1)), ("b", event(2, "crash")), ("c", event(3))]
    )
    assert [p.value["id"] for p in step.to(OUT)] == ["e1", "e3"]
    assert [d.reason for d in step.dead_letters] == ["UNEXPECTED"]
    assert step.dead_letters[0].source[2] == 1


def test_a_topic_the_app_does_not_read_is_refused(driver: TestDriver) -> None:
    with pytest.raises(DriverError, match="does not read"):
        driver.pipe("elsewhere", event(1))


class Count(BaseModel):
    word: str


COUNT_SCHEMA = '{"type": "record", "name": "count", "fields": [{"name": "word", "type": "string"}]}'
TOTAL_SCHEMA = (
    '{"type": "record", "name": "total", "fields": '
    '[{"name": "word", "type": "string"}, {"name": "n", "type": "long"}]}'
)


def counter() -> App:
    """A stateful app: counts words per partition; "forget" deletes the count; "boom"
    writes and then fails, so its write must not survive."""
    store = StateStore("counts", "counts.changelog")

    def transform(record: InputRecord) -> list[OutputRecord]:
        word = record.value.word
        if word == "forget":
            store.delete(record.partition, "forget")
            return []
        n = store.get(record.partition, word, 0) + 1
        store.put(record.partition, word, n)
        if word == "boom":
            raise ValueError("boom")
        return [OutputRecord("totals", word, {"word": word, "n": n})]

    return App(
        "counter",
        transform,
        {"words": AvroContract(COUNT_SCHEMA, Count)},
        {"totals": AvroContract(TOTAL_SCHEMA)},
        stores=(store,),
    )


def test_state_is_kept_across_batches_and_a_failed_record_leaves_no_trace() -> None:
    with TestDriver(counter(), EngineSettings(instance_id="t-1"), partitions=3) as driver:
        driver.pipe_all("words", [("a", {"word": "a"}), ("a", {"word": "a"})])
        step = driver.pipe("words", {"word": "a"}, key="a")
        assert [p.value["n"] for p in driver.output("totals")] == [1, 2, 3]
        [change] = step.to("counts.changelog")
        assert change.value == 3 and change.partition == step.to("totals")[0].partition
        driver.pipe("words", {"word": "boom"}, key="boom")
        driver.pipe("words", {"word": "forget"}, key="forget", partition=0)
        state = driver.state("counts")
        assert state == {(change.partition, "a"): 3}
        assert [d.reason for d in driver.dead_letters()] == ["UNEXPECTED"]


def test_a_deleted_key_is_a_tombstone_in_the_state() -> None:
    with TestDriver(counter(), EngineSettings(instance_id="t-1")) as driver:
        driver.pipe("words", {"word": "forget"}, key="x")
        driver.pipe("words", {"word": "b"})
        assert driver.state("counts") == {(0, "b"): 1}
        assert driver.output("counts.changelog")[0].raw is None
