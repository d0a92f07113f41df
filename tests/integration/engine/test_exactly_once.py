"""N records in -> N outputs exactly once, and the group's offsets at the end."""

from __future__ import annotations

from collections import Counter

from eos.engine.app import build_processor
from eos.examples.events import build
from eos.testing.helpers import committed_offsets, read_committed
from tests.integration.engine.conftest import Pipeline, make_events


def test_every_input_yields_one_output_and_offsets_reach_the_end(pipeline: Pipeline) -> None:
    pipeline.produce(make_events(3000))
    settings = pipeline.settings()
    processor = build_processor(settings, build(settings), until_caught_up=True)

    assert processor.run() == 0

    ids = Counter(m.key() for m in pipeline.outputs())
    values = [m.value() for m in pipeline.outputs()]
    assert len(values) == 3000
    assert len({v for v in values}) == 3000  # no duplicate output
    assert sum(ids.values()) == 3000
    assert pipeline.dead_letters() == []
    inputs_per_partition = Counter(
        m.partition() for m in read_committed(pipeline.cluster, pipeline.input)
    )
    offsets = committed_offsets(pipeline.cluster, pipeline.group, pipeline.input, 3)
    for partition, count in inputs_per_partition.items():
        assert partition is not None
        # Each produced record is followed by nothing else; the group resumes after it.
        assert offsets[partition] == count
