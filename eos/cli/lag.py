"""`eos lag`: where a consumer group stands, per partition, once or every few seconds."""

from __future__ import annotations

import json
import time

import click
from confluent_kafka import KafkaException

from eos.cli.common import CONTEXT_SETTINGS, fail
from eos.cli.preflight import reachable
from eos.cli.settings import engine_options, engine_settings
from eos.kafka.clients import consumer_config
from eos.kafka.errors import kafka_error
from eos.kafka.lag import PartitionLag, group_lag
from eos.kafka.offsets import Offsets

__all__ = ["lag_command", "render"]

HEADER = ("TOPIC", "PARTITION", "COMMITTED", "LSO", "HIGH", "LAG", "OLDEST")


@click.command("lag", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="A topic to show (repeat, or A,B). [default: EOS_INPUT_TOPICS, else every topic "
    "the group has committed offsets on]",
)
@click.option("--watch", is_flag=True, help="Show it again every --interval seconds.")
@click.option("--interval", type=float, default=5.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per showing.")
@engine_options("bootstrap_servers", "group_id")
def lag_command(
    topics: tuple[str, ...], watch: bool, interval: float, as_json: bool, **given: str | None
) -> None:
    """Committed offset, last stable offset, high watermark, lag and the age of the oldest
    unprocessed record of a consumer group (EOS_GROUP_ID), per partition.

    LAG is the LSO minus the committed offset: records the group can read and has not
    processed. HIGH past the LSO means a transaction is open on the partition.
    """
    settings = engine_settings(given)
    reachable(settings, "eos lag", registry=False)
    config = consumer_config(settings)
    wanted = [t for spec in topics for t in spec.split(",") if t] or settings.input_topics
    try:
        with Offsets(config) as offsets:
            names = wanted or offsets.group_topics(settings.group_id)
            if not names:
                fail(
                    f"eos lag: group {settings.group_id!r} has committed no offsets; name its "
                    "topics with --topic or EOS_INPUT_TOPICS, or the group with --group-id",
                    2,
                )
            while True:
                rows = group_lag(offsets, config, settings.group_id, names)
                click.echo(_json(settings.group_id, rows) if as_json else render(rows))
                if not watch:
                    return
                time.sleep(interval)
    except KeyError as exc:
        fail(f"eos lag: {exc.args[0]}; check --topic / EOS_INPUT_TOPICS", 2)
    except KafkaException as exc:
        fail(
            f"eos lag: cannot ask the cluster at {settings.bootstrap_servers} "
            f"({kafka_error(exc).str()}); check EOS_BOOTSTRAP_SERVERS / --bootstrap-servers",
            1,
        )
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None


def render(rows: list[PartitionLag]) -> str:
    """The rows as an aligned table with a total line."""
    table = [HEADER] + [
        (
            r.topic,
            str(r.partition),
            str(r.committed) if r.committed >= 0 else "-",
            str(r.last_stable),
            str(r.high_watermark) + ("*" if r.open_transaction else ""),
            str(r.lag),
            "-" if r.oldest_age_s is None else f"{r.oldest_age_s:.1f}s",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    ages = [r.oldest_age_s for r in rows if r.oldest_age_s is not None]
    oldest = f", oldest unprocessed {max(ages):.1f}s" if ages else ""
    lines.append(f"total lag {sum(r.lag for r in rows):,}{oldest}")
    if any(r.open_transaction for r in rows):
        lines.append("* a transaction is open on the partition (records past the LSO)")
    return "\n".join(lines)


def _json(group: str, rows: list[PartitionLag]) -> str:
    return json.dumps(
        {
            "group": group,
            "at": time.time(),
            "total_lag": sum(r.lag for r in rows),
            "partitions": [
                {
                    "topic": r.topic,
                    "partition": r.partition,
                    "committed": r.committed,
                    "last_stable": r.last_stable,
                    "high_watermark": r.high_watermark,
                    "lag": r.lag,
                    "oldest_age_s": r.oldest_age_s,
                }
                for r in rows
            ],
        }
    )
