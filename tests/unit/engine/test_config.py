"""EngineSettings: validated at start, messages name the EOS_* setting, secrets stay secret."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from eos.config import EngineSettings, Mode, SecuritySettings
from eos.kafka.clients import consumer_config, producer_config

PASSWORD = "hunter2-Very-Secret"


def test_defaults_are_valid() -> None:
    settings = EngineSettings()
    assert settings.mode is Mode.EXACTLY_ONCE
    assert settings.transaction_timeout_ms < settings.max_poll_interval_ms


@pytest.mark.parametrize("timeout_ms", [60_000, 90_000])
def test_transaction_timeout_not_below_max_poll_interval_is_rejected(timeout_ms: int) -> None:
    with pytest.raises(ValidationError) as info:
        EngineSettings(transaction_timeout_ms=timeout_ms, max_poll_interval_ms=60_000)
    message = str(info.value)
    assert "EOS_TRANSACTION_TIMEOUT_MS" in message
    assert "EOS_MAX_POLL_INTERVAL_MS" in message


def test_transaction_timeout_from_env_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_TRANSACTION_TIMEOUT_MS", "400000")
    with pytest.raises(ValidationError, match="EOS_TRANSACTION_TIMEOUT_MS"):
        EngineSettings()


def test_other_cross_checks_name_their_setting() -> None:
    with pytest.raises(ValidationError, match="EOS_BACKOFF_INITIAL_MS"):
        EngineSettings(backoff_initial_ms=500, backoff_max_ms=100)
    with pytest.raises(ValidationError, match="EOS_DLQ_TOPIC"):
        EngineSettings(input_topics=["a", "d"], dlq_topic="d")


def test_input_topics_from_a_comma_separated_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_INPUT_TOPICS", "a,b")
    assert EngineSettings().input_topics == ["a", "b"]


def test_input_topics_from_a_json_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_INPUT_TOPICS", '["a", "b"]')
    assert EngineSettings().input_topics == ["a", "b"]


def test_input_topics_from_a_string_argument_are_split_and_trimmed() -> None:
    topics: Any = " a, b ,,c"  # as a flag or env var gives it
    assert EngineSettings(input_topics=topics).input_topics == ["a", "b", "c"]


def test_scalar_settings_come_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_GROUP_ID", "payments")
    monkeypatch.setenv("EOS_BATCH_MAX_RECORDS", "17")
    monkeypatch.setenv("EOS_MODE", "at_least_once")
    settings = EngineSettings()
    assert (settings.group_id, settings.batch_max_records) == ("payments", 17)
    assert settings.mode is Mode.AT_LEAST_ONCE


def test_the_password_is_never_in_str_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("EOS_SSL_KEY_PASSWORD", PASSWORD + "-key")
    monkeypatch.setenv("EOS_SCHEMA_REGISTRY_BASIC_AUTH", "user:" + PASSWORD + "-sr")
    settings = EngineSettings()
    assert settings.security.sasl_password is not None  # it was read
    for text in (
        str(settings),
        repr(settings),
        str(settings.security),
        repr(settings.security),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert PASSWORD not in text


def test_client_config_passes_the_secrets_to_librdkafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("EOS_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("EOS_SASL_USERNAME", "svc")
    monkeypatch.setenv("EOS_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("EOS_SSL_KEY_PASSWORD", PASSWORD + "-key")
    security = SecuritySettings()
    config = security.client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "svc"
    assert config["sasl.password"] == PASSWORD
    assert config["ssl.key.password"] == PASSWORD + "-key"
    assert PASSWORD in security.secrets()
    settings = EngineSettings()
    assert consumer_config(settings)["sasl.password"] == PASSWORD
    assert producer_config(settings)["sasl.password"] == PASSWORD


def test_no_secret_keys_without_secrets() -> None:
    config = SecuritySettings().client_config()
    assert config == {"security.protocol": "PLAINTEXT"}
    assert SecuritySettings().secrets() == []


def test_static_membership_names_the_instance_to_the_group() -> None:
    dynamic = consumer_config(EngineSettings(instance_id="host-1"))
    assert "group.instance.id" not in dynamic
    static = consumer_config(EngineSettings(instance_id="host-1", static_membership=True))
    assert static["group.instance.id"] == "host-1"


def test_members_heartbeat_every_second_and_never_above_a_third_of_the_session() -> None:
    config = consumer_config(EngineSettings(session_timeout_ms=6_000))
    assert config["heartbeat.interval.ms"] == 1000
    assert config["session.timeout.ms"] == 6000
    with pytest.raises(ValidationError, match="EOS_HEARTBEAT_INTERVAL_MS"):
        EngineSettings(session_timeout_ms=6_000, heartbeat_interval_ms=2_500)
