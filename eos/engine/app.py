"""An application for the engine, and the one place that builds its clients.

`build_processor` is the composition root: settings in, a Processor out, with its
consumer, producer, committer, codecs, breaker, redactor and stores made here and
handed over. Nothing below it constructs a client of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings, Mode
from eos.engine.api import Transform
from eos.engine.batch import BatchRunner
from eos.engine.breaker import CircuitBreaker
from eos.engine.processor import Processor
from eos.engine.redact import Redactor
from eos.engine.state import StateStore
from eos.engine.transaction import AtLeastOnceCommitter, Committer, TransactionalCommitter
from eos.errors import ConfigurationError
from eos.kafka.clients import (
    consumer_config,
    make_admin,
    make_consumer,
    make_producer,
    make_registry,
)
from eos.serde.avro import AvroContract, AvroDecoder, AvroEncoder

__all__ = ["App", "AppFactory", "TopicsMissing", "build_processor", "check_topics"]


@dataclass(frozen=True)
class App:
    """A transform and the contracts of its topics (None: raw bytes, not decoded)."""

    name: str
    transform: Transform
    inputs: Mapping[str, AvroContract | None]
    outputs: Mapping[str, AvroContract]
    stores: Sequence[StateStore] = ()
    # Contract for outputs to topics known only at run time (reply-to topics).
    dynamic_output: AvroContract | None = None
    # Partition assignment the app needs (stores need co-partitioned inputs: "range").
    assignment_strategy: str | None = None


AppFactory = Callable[[EngineSettings], App]


class TopicsMissing(ConfigurationError):
    """A topic the app reads or writes does not exist, or they are not co-partitioned."""


def check_topics(admin: AdminClient, settings: EngineSettings, app: App) -> None:
    """Fail at start, naming every missing topic, rather than at the first produce; and
    refuse a stateful app whose inputs and changelogs are not co-partitioned."""
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
    settings = _effective_settings(settings, app)
    check_topics(make_admin(settings), settings, app)
    registry = make_registry(settings)
    decoders = {t: AvroDecoder(registry, c) if c else None for t, c in app.inputs.items()}
    encoders = {t: AvroEncoder(registry, t, c) for t, c in app.outputs.items()}
    fallback = None
    if app.dynamic_output is not None:
        fallback = _lazy_encoders(registry, app.dynamic_output)
    runner = BatchRunner(
        app.transform, decoders, encoders, settings.retry_max_attempts, app.stores, fallback
    )
    for store in app.stores:
        store.bind(consumer_config(settings))
    consumer = make_consumer(settings, partition_eof=until_caught_up)
    return Processor(
        settings,
        runner,
        consumer,
        make_committer(settings, consumer),
        CircuitBreaker.from_settings(settings),
        Redactor(settings.secrets()),
        stores=app.stores,
        until_caught_up=until_caught_up,
    )


def make_committer(settings: EngineSettings, consumer: Consumer) -> Committer:
    if settings.mode is Mode.EXACTLY_ONCE:
        return TransactionalCommitter(make_producer(settings), consumer)
    return AtLeastOnceCommitter(make_producer(settings), consumer)


def _effective_settings(settings: EngineSettings, app: App) -> EngineSettings:
    """The settings with what the app implies: its inputs and its assignment strategy."""
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
        raise ConfigurationError(
            f"EOS_INPUT_TOPICS names {sorted(unknown)}, which app {app.name} "
            f"has no contract for (it reads {sorted(app.inputs)})"
        )
    return settings


def _lazy_encoders(
    registry: SchemaRegistryClient, contract: AvroContract
) -> Callable[[str], AvroEncoder | None]:
    cache: dict[str, AvroEncoder] = {}

    def get(topic: str) -> AvroEncoder:
        if topic not in cache:
            cache[topic] = AvroEncoder(registry, topic, contract)
        return cache[topic]

    return get
