"""An application for the engine: a transform and the contracts of its topics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from eos.config import EngineSettings
from eos.engine.api import Transform
from eos.engine.batch import BatchRunner
from eos.engine.processor import Processor
from eos.kafka.clients import consumer_config, make_registry
from eos.serde.avro import AvroContract, AvroDecoder, AvroEncoder


@dataclass(frozen=True)
class App:
    name: str
    transform: Transform
    inputs: Mapping[str, AvroContract | None]  # None: raw bytes, no decoding
    outputs: Mapping[str, AvroContract]


AppFactory = Callable[[EngineSettings], App]


class TopicsMissing(RuntimeError):
    pass


def check_topics(settings: EngineSettings, topics: list[str]) -> None:
    """Fail at start, naming every missing topic, rather than at the first produce."""
    admin = AdminClient(
        {
            k: v
            for k, v in consumer_config(settings).items()
            if k in ("bootstrap.servers", "client.id")
            or k.startswith(("sasl.", "ssl.", "security."))
        }
    )
    existing = set(admin.list_topics(timeout=30).topics)
    missing = sorted(set(topics) - existing)
    if missing:
        raise TopicsMissing(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}. "
            "Create them first (the engine does not auto-create topics, so a typo cannot "
            "silently create a new one)."
        )


def build_processor(settings: EngineSettings, app: App, until_caught_up: bool = False) -> Processor:
    if not settings.input_topics:
        settings = settings.model_copy(update={"input_topics": list(app.inputs)})
    unknown = set(settings.input_topics) - set(app.inputs)
    if unknown:
        raise ValueError(
            f"EOS_INPUT_TOPICS names {sorted(unknown)}, which app {app.name} "
            f"has no contract for (it reads {sorted(app.inputs)})"
        )
    check_topics(settings, [*settings.input_topics, *app.outputs, settings.dlq_topic])
    registry = make_registry(settings)
    decoders = {t: AvroDecoder(registry, c) if c else None for t, c in app.inputs.items()}
    encoders = {t: AvroEncoder(registry, t, c) for t, c in app.outputs.items()}
    runner = BatchRunner(app.transform, decoders, encoders, settings.retry_max_attempts)
    return Processor(settings, runner, until_caught_up=until_caught_up)
