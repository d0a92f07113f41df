"""A pass-through app: every input record's key, bytes and headers to the output topic,
exactly once. The benchmark's measure of the engine's own cost per record (no Avro, no
transform work)."""

from __future__ import annotations

from eos.config import EngineSettings
from eos.engine.api import InputRecord, OutputRecord
from eos.engine.app import App

INPUT = "events"
OUTPUT = "events.copy"


def build(settings: EngineSettings) -> App:
    inputs = settings.input_topics or [INPUT]
    output = settings.output_topic or OUTPUT

    def transform(record: InputRecord) -> list[OutputRecord]:
        return [OutputRecord(output, record.key, record.raw_value, record.headers)]

    return App("copy", transform, {t: None for t in inputs}, {})
