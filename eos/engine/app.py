"""An application for the engine, and the one place that builds its clients.

`build_processor` is the composition root: settings in, a Processor out, with its
consumer, producer, committer, codecs, breaker, redactor and stores made here and
handed over. Nothing below it constructs a client of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings, Mode
from eos.engine.api import Transform
from eos.engine.batch import BatchRunner, Topics
from eos.engine.breaker import CircuitBreaker
from eos.engine.identity import stores_dir
from eos.engine.processor import Processor
from eos.engine.rebalance import Rebalance
from eos.engine.redact import Redactor
from eos.engine.restore import Restorer
from eos.engine.state import StateStore
from eos.engine.transaction import AtLeastOnceCommitter, Committer, TransactionalCommitter
from eos.errors import ConfigurationError
from eos.kafka.clients import (
    client_id,
    make_admin,
    make_consumer,
    make_producer,
    make_registry,
)
from eos.kafka.metadata import TopicCache, topic_ids, twin_member
from eos.kafka.reader import reader_config
from eos.kafka.statistics import ClientStatistics
from eos.serde.avro import (
    AvroContract,
    AvroDecoder,
    AvroEncoder,
    RegistryUnavailable,
    SchemaNotRegistered,
    record_subject,
    subject_for,
)

__all__ = [
    "App",
    "AppFactory",
    "Codecs",
    "TopicsMissing",
    "Topology",
    "app_subjects",
    "build_processor",
    "check_topics",
]

log = logging.getLogger("eos")


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
    # Partition assignment the app asks for (None: the settings'). A stateful app's
    # inputs follow its first one (eos.engine.rebalance), so any assignor keeps them
    # co-partitioned.
    assignment_strategy: str | None = None


AppFactory = Callable[[EngineSettings], App]


@dataclass(frozen=True)
class Codecs:
    """An app's decoder per input (None: raw bytes), encoder per output, and the
    encoder of outputs to topics named only at run time (one subject, record-name
    strategy, for all of them)."""

    decoders: Mapping[str, AvroDecoder | None]
    encoders: Mapping[str, AvroEncoder]
    dynamic: AvroEncoder | None

    @classmethod
    def of(cls, registry: SchemaRegistryClient, app: App) -> Codecs:
        decoders = {
            t: AvroDecoder(registry, c, subject_for(t)) if c else None
            for t, c in app.inputs.items()
        }
        encoders = {t: AvroEncoder(registry, t, c) for t, c in app.outputs.items()}
        dynamic = None
        if app.dynamic_output is not None:
            contract = app.dynamic_output
            dynamic = AvroEncoder(registry, "", contract, subject=record_subject(contract))
        return cls(decoders, encoders, dynamic)

    def runner(self, app: App, max_attempts: int, topics: Topics) -> BatchRunner:
        """The batch runner of `app` with these codecs."""
        return BatchRunner(
            app.transform,
            self.decoders,
            self.encoders,
            max_attempts,
            app.stores,
            self.dynamic.for_topic if self.dynamic else None,
            topics,
        )


class TopicsMissing(ConfigurationError):
    """A topic the app reads or writes does not exist, or they are not co-partitioned."""


@dataclass(frozen=True)
class Topology:
    """What the cluster said at the start: its id, and the partition counts and ids of
    the app's inputs and changelogs."""

    cluster_id: str
    counts: Mapping[str, int]
    topic_ids: Mapping[str, str]


def check_topics(admin: AdminClient, settings: EngineSettings, app: App) -> Topology:
    """Fail at start, naming every missing topic, rather than at the first produce; and
    refuse a stateful app whose inputs and changelogs are not co-partitioned."""
    meta = admin.list_topics(timeout=30)
    topics = meta.topics
    changelogs = [s.changelog_topic for s in app.stores]
    wanted = [*settings.input_topics, *app.outputs, settings.dlq_topic, *changelogs]
    missing = sorted(set(wanted) - set(topics))
    if missing:
        raise TopicsMissing(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}. "
            "Create them first (the engine does not auto-create topics, so a typo cannot "
            "silently create a new one)."
        )
    counts = {t: len(topics[t].partitions) for t in [*settings.input_topics, *changelogs]}
    if app.stores and len(set(counts.values())) > 1:
        raise TopicsMissing(
            f"app {app.name} keeps state per partition, so its inputs and changelogs "
            f"must have the same partition count; they have {counts}"
        )
    return Topology(meta.cluster_id or "", counts, topic_ids(admin, changelogs))


def build_processor(
    settings: EngineSettings,
    app: App,
    until_caught_up: bool = False,
    after_crash: bool = False,
    client_stats: ClientStatistics | None = None,
) -> Processor:
    """The processor and every client it uses. `after_crash`: this instance's previous run
    on this host died without leaving the group (eos/engine/identity.py); `client_stats`:
    where the clients' librdkafka statistics go (for the metrics endpoint)."""
    extra = client_stats.config() if client_stats else {}
    settings = _effective_settings(settings, app)
    admin = make_admin(settings)
    topology = check_topics(admin, settings, app)
    registry = make_registry(settings)
    codecs = Codecs.of(registry, app)
    _look_up_schemas([*codecs.encoders.values(), *([codecs.dynamic] if codecs.dynamic else [])])
    runner = codecs.runner(app, settings.retry_max_attempts, TopicCache(admin))
    for store in app.stores:
        topic = store.changelog_topic
        store.bind(
            stores_dir(settings),
            {"cluster": topology.cluster_id, "topic_id": topology.topic_ids.get(topic, "")},
        )
    consumer = make_consumer(settings, partition_eof=until_caught_up, extra=extra)
    stop = threading.Event()
    me = client_id(settings)
    changelogs = [store.changelog_topic for store in app.stores]
    restorer = Restorer(app.stores, reader_config(settings), settings.restore_stall_s)
    rebalance = Rebalance(
        settings.input_topics,
        consumer,
        app.stores,
        restorer,
        topology.counts,
        settings.incremental_rebalance,
        follow=bool(app.stores) and settings.group_protocol == "classic",
        metadata=admin,
    )
    return Processor(
        settings,
        runner,
        consumer,
        make_committer(settings, consumer, stop, changelogs, extra),
        CircuitBreaker.from_settings(settings),
        Redactor(settings.secrets()),
        stores=app.stores,
        until_caught_up=until_caught_up,
        stop=stop,
        twin=lambda mine: twin_member(admin, settings.group_id, me, mine),
        rebalance=rebalance,
        after_crash=after_crash,
    )


def make_committer(
    settings: EngineSettings,
    consumer: Consumer,
    stop: threading.Event,
    changelogs: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Committer:
    if settings.mode is Mode.EXACTLY_ONCE:
        return TransactionalCommitter(
            lambda: make_producer(settings, extra),
            consumer,
            settings.transaction_timeout_ms / 1000,
            stopping=stop.is_set,
            watch=changelogs,
        )
    return AtLeastOnceCommitter(make_producer(settings, extra), consumer)


def _effective_settings(settings: EngineSettings, app: App) -> EngineSettings:
    """The settings with what the app implies: its inputs and its assignment strategy."""
    if not settings.input_topics:
        settings = settings.model_copy(update={"input_topics": list(app.inputs)})
    if app.assignment_strategy and settings.group_protocol == "classic":
        settings = settings.model_copy(
            update={"partition_assignment_strategy": app.assignment_strategy}
        )
    elif app.stores:
        # KIP-848: the broker assigns, and every input is subscribed (no following, see
        # build_processor); its range assignor gives one member partition p of all.
        overrides = {**settings.client_overrides, "group.remote.assignor": "range"}
        settings = settings.model_copy(update={"client_overrides": overrides})
    unknown = set(settings.input_topics) - set(app.inputs)
    if unknown:
        raise ConfigurationError(
            f"EOS_INPUT_TOPICS names {sorted(unknown)}, which app {app.name} "
            f"has no contract for (it reads {sorted(app.inputs)})"
        )
    if app.stores and set(settings.input_topics) != set(app.inputs):
        raise ConfigurationError(
            f"app {app.name} keeps state per partition of all its inputs "
            f"({', '.join(sorted(app.inputs))}), so every instance reads all of them; "
            "unset EOS_INPUT_TOPICS"
        )
    return settings


def app_subjects(app: App) -> dict[str, AvroContract]:
    """Every subject the app's processors look up, with its contract: what `eos schemas
    register` registers for it."""
    topics = {t: c for t, c in [*app.inputs.items(), *app.outputs.items()] if c is not None}
    out = {subject_for(t): c for t, c in topics.items()}
    if app.dynamic_output is not None:
        out[record_subject(app.dynamic_output)] = app.dynamic_output
    return out


def _look_up_schemas(encoders: Iterable[AvroEncoder]) -> None:
    """Every output's schema id, asked at start: a schema setup never registered stops
    the start with a clear message; an unreachable registry is waited for by the loop."""
    for encoder in encoders:
        try:
            encoder.prepare()
        except SchemaNotRegistered as exc:
            raise ConfigurationError(str(exc)) from exc
        except RegistryUnavailable as exc:
            log.warning("%s; starting anyway: batches wait until it answers", exc)
            return
