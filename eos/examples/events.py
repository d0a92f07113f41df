"""The example app: enrich events with a fee. Used by the tests and the benchmark.

The event's `action` shows how a transform signals failures:
`reject` -> PermanentError (dead-lettered), `flaky:<n>` -> TransientError the first n
times this process sees the event, `crash` -> an unexpected exception (isolated).
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from eos.config import EngineSettings
from eos.engine.api import InputRecord, OutputRecord, PermanentError, TransientError
from eos.engine.app import App
from eos.serde.schemas import contract

INPUT = "events"
OUTPUT = "events.enriched"


class Event(BaseModel):
    """The typed input; Avro decodes, pydantic checks what Avro cannot say."""

    id: str = Field(min_length=1)
    seq: int
    account: str = Field(min_length=1)
    amount: int = Field(ge=0)
    action: str = "ok"
    created_at_ms: int
    payload: str = ""


def build(settings: EngineSettings) -> App:
    inputs = settings.input_topics or [INPUT]
    output = settings.output_topic or OUTPUT
    seen: Counter[str] = Counter()
    instance = settings.instance_id

    def transform(record: InputRecord) -> list[OutputRecord]:
        event: Event = record.value
        action = event.action
        if action == "reject":
            raise PermanentError(f"event {event.id} is marked for rejection")
        if action.startswith("flaky:"):
            seen[event.id] += 1
            if seen[event.id] <= int(action.split(":", 1)[1]):
                raise TransientError(f"flaky dependency for {event.id}")
        if action == "crash":
            raise RuntimeError(f"bug triggered by event {event.id}")
        enriched = {
            "id": event.id,
            "seq": event.seq,
            "account": event.account,
            "amount": event.amount,
            "fee": max(1, event.amount // 100),
            "input_created_at_ms": event.created_at_ms,
            "processed_by": instance,
        }
        return [OutputRecord(output, record.key, enriched)]

    event = contract("event", Event)
    return App(
        "events", transform, {t: event for t in inputs}, {output: contract("enriched_event")}
    )
