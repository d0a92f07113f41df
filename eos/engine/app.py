"""An application for the engine: a transform and the contracts of its topics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.api import Transform
from eos.engine.batch import BatchRunner
from eos.engine.processor import Processor
from eos.engine.state import StateStore
from eos.kafka.clients import make_admin, make_registry
from eos.serde.avro import AvroContract, AvroDecoder, AvroEncoder


@dataclass(frozen=True)
class App:
    name: str
    transform: Transform
    inputs: Mapping[str, AvroContract | None]  # None: raw bytes, no decoding
    outputs: Mapping[str, AvroContract]
    stores: Sequence[StateStore] = ()
    # Contract for outputs to topics known only at run time (reply-to topics).
    dynamic_output: AvroContract | None = None
    # Partition assignment the app needs (stores need co-partitioned inputs: "range").
    assignment_strategy: str | None = None


AppFactory = Callable[[EngineSettings], App]


class TopicsMissing(RuntimeError):
    pass


def check_topics(settings: EngineSettings, app: App) -> None:
    """Fail at start, naming every missing topic, rather than at the first produce; and
    refuse a stateful app whose inputs and changelogs are not co-partitioned."""
    admin = make_admin(settings)
    topics = admin.list_topics(timeout=30).topics
    changelogs = [s.changelog_topic for s in app.stores]
    wanted = [*settings.input_topics, *app.outputs, settings.dlq_topic, *changelogs]
    missing = sorted(set(wanted) - set(topics))
    if missing:
        raise TopicsMissing(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}. "
            "Create them first (the engine does not auto-create topics, so a typo cannot "
            "silently create a new one)."
        )
    if app.stores:
        counts = {t: len(topics[t].partitions) for t in [*settings.input_topics, *changelogs]}
        if len(set(counts.values())) > 1:
            raise TopicsMissing(
                f"app {app.name} keeps state per partition, so its inputs and changelogs "
                f"must have the same partition count; they have {counts}"
            )


def build_processor(settings: EngineSettings, app: App, until_caught_up: bool = False) -> Processor:
    if not settings.input_topics:
        settings = settings.model_copy(update={"input_topics": list(app.inputs)})
    if app.assignment_strategy and settings.group_protocol == "classic":
        settings = settings.model_copy(
            update={"partition_assignment_strategy": app.assignment_strategy}
        )
    elif app.assignment_strategy:  # KIP-848: the broker assigns, with the named assignor
        overrides = {**settings.client_overrides, "group.remote.assignor": app.assignment_strategy}
        settings = settings.model_copy(update={"client_overrides": overrides})
    unknown = set(settings.input_topics) - set(app.inputs)
    if unknown:
        raise ValueError(
            f"EOS_INPUT_TOPICS names {sorted(unknown)}, which app {app.name} "
            f"has no contract for (it reads {sorted(app.inputs)})"
        )
    check_topics(settings, app)
    registry = make_registry(settings)
    decoders = {t: AvroDecoder(registry, c) if c else None for t, c in app.inputs.items()}
    encoders = {t: AvroEncoder(registry, t, c) for t, c in app.outputs.items()}
    fallback = None
    if app.dynamic_output is not None:
        fallback = _lazy_encoders(registry, app.dynamic_output)
    runner = BatchRunner(
        app.transform, decoders, encoders, settings.retry_max_attempts, app.stores, fallback
    )
    return Processor(settings, runner, until_caught_up=until_caught_up, stores=app.stores)


def _lazy_encoders(
    registry: SchemaRegistryClient, contract: AvroContract
) -> Callable[[str], AvroEncoder | None]:
    cache: dict[str, AvroEncoder] = {}

    def get(topic: str) -> AvroEncoder:
        if topic not in cache:
            cache[topic] = AvroEncoder(registry, topic, contract)
        return cache[topic]

    return get
