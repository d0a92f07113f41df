"""The bench's ceiling: a minimal confluent-kafka consume-transform-produce loop, with
the engine's client settings and batch size, that copies raw bytes exactly once. What
the client itself can do on this machine; the engine's cost is the distance to it.

    python -m eos.tools.bench_ceiling SETTINGS_JSON STATS_JSON

SETTINGS_JSON holds EngineSettings fields (input_topics, output_topic, group_id, ...);
it stops when it has reached the input's end offsets taken at start, and writes
records, busy_seconds and cpu_seconds to STATS_JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from eos.config import EngineSettings
from eos.kafka.clients import consumer_config, producer_config
from eos.kafka.offsets import Offsets


def main(settings_file: str, stats_file: str) -> None:
    s = EngineSettings(**json.loads(Path(settings_file).read_text()))
    consumer, producer = Consumer(consumer_config(s)), Producer(producer_config(s))
    output = s.output_topic or ""
    producer.init_transactions(30)
    consumer.subscribe(s.input_topics)
    with Offsets(consumer_config(s)) as offsets:
        ends = offsets.high_watermarks(offsets.partitions(s.input_topics))
    done: dict[tuple[str, int], int] = {}
    records, first, last, first_cpu, last_cpu = 0, 0.0, 0.0, 0.0, 0.0
    while any(done.get(tp, 0) < end for tp, end in ends.items()):
        msgs = consumer.consume(s.batch_max_records, s.batch_max_ms / 1000)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        if not first:
            first, first_cpu = time.monotonic(), time.process_time()
        producer.begin_transaction()
        for m in msgs:
            producer.produce(output, m.value(), m.key(), headers=m.headers())
            done[(m.topic(), m.partition())] = m.offset() + 1  # type: ignore[index,operator]
        positions = [TopicPartition(t, p, o) for (t, p), o in done.items()]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        records, last, last_cpu = records + len(msgs), time.monotonic(), time.process_time()
    consumer.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {
        "records": records,
        "busy_seconds": round(last - first, 3),
        "busy_cpu_seconds": round(last_cpu - first_cpu, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "exit_code": 0,
    }
    Path(stats_file).write_text(json.dumps(stats))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
