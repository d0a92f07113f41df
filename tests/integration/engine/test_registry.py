"""The schema registry going away: nothing is dead-lettered, nothing stops; processors
look schemas up and never register them.

The outage is real for the processor (its registry URL goes through a proxy that the
test cuts: connections refused) while the registry other tests use keeps running.
"""

from __future__ import annotations

import json
import time
import uuid

from eos.serde.schemas import load_schema
from eos.testing.helpers import create_topic, produce_avro
from tests.integration.engine.conftest import Pipeline, make_events, stop, wait_for
from tests.integration.proxy import proxied


def _v2_event_schema() -> str:
    """The event schema plus an optional field: a new, compatible version with a new id."""
    schema = json.loads(load_schema("event"))
    schema["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    return json.dumps(schema)


def test_a_registry_outage_mid_run_holds_the_batch_and_dead_letters_nothing(
    pipeline: Pipeline,
) -> None:
    with proxied(pipeline.cluster.schema_registry_url) as (proxy, url):
        proc = pipeline.spawn("outage", "--schema-registry-url", url)
        pipeline.produce(make_events(20))
        wait_for(lambda: len(pipeline.outputs()) == 20, 60, "the first 20 outputs")

        proxy.cut()
        # Records framed with an id this processor has never seen: it must ask the
        # registry, which it cannot reach.
        v2 = [{**e, "note": "v2"} for e in make_events(20, start=100)]
        produce_avro(
            pipeline.cluster, pipeline.input, _v2_event_schema(), [(e["account"], e) for e in v2]
        )
        time.sleep(12)  # far past EOS_RETRY_MAX_ATTEMPTS' backoffs
        assert proc.poll() is None, "the processor stopped during the outage"
        assert pipeline.dead_letters() == []
        assert len(pipeline.outputs()) == 20

        proxy.restore()
        wait_for(lambda: len(pipeline.outputs()) == 40, 60, "the outputs after the outage")
        code, out = stop(proc)
    assert code == 0, out
    assert pipeline.dead_letters() == []
    assert "schema registry unavailable" in out
    assert "schema registry unavailable: back after" in out


def test_a_processor_started_while_the_registry_is_down_waits_then_runs(
    pipeline: Pipeline,
) -> None:
    with proxied(pipeline.cluster.schema_registry_url) as (proxy, url):
        proxy.cut()
        proc = pipeline.spawn("cold", "--schema-registry-url", url)
        pipeline.produce(make_events(10))
        time.sleep(10)
        assert proc.poll() is None, "the processor gave up on an unreachable registry"
        assert pipeline.outputs() == []
        proxy.restore()
        wait_for(lambda: len(pipeline.outputs()) == 10, 60, "outputs once the registry answers")
        code, out = stop(proc)
    assert code == 0, out
    assert pipeline.dead_letters() == []


def test_a_processor_whose_output_schema_is_not_registered_stops_saying_so(
    pipeline: Pipeline,
) -> None:
    output = create_topic(pipeline.cluster, f"unregistered-{uuid.uuid4().hex[:6]}")
    proc = pipeline.spawn("unregistered", "--output-topic", output)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert f"subject {output}-value has no version with this schema" in out
    assert "eos schemas register" in out
    assert "Traceback" not in out
