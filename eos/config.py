"""Settings: environment variables with the EOS_ prefix, a .env file, and CLI flags.

Validated at start; every message names the setting (EOS_<NAME>) that is wrong.
"""

from __future__ import annotations

import json
import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Mode(StrEnum):
    EXACTLY_ONCE = "exactly_once"
    AT_LEAST_ONCE = "at_least_once"


class SecuritySettings(BaseSettings):
    """Passed through to both clients. Secrets are SecretStr: never printed or logged."""

    model_config = SettingsConfigDict(env_prefix="EOS_", env_file=".env", extra="ignore")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    schema_registry_basic_auth: SecretStr | None = Field(
        default=None, description="user:password for the schema registry"
    )
    # The registry's TLS: the CA that signed its certificate (an https URL with a private
    # CA), and a client certificate and key where it asks for one.
    schema_registry_ca_location: str | None = None
    schema_registry_certificate_location: str | None = None
    schema_registry_key_location: str | None = None

    def registry_config(self) -> dict[str, str]:
        """The schema registry client's security settings."""
        out = {
            "ssl.ca.location": self.schema_registry_ca_location,
            "ssl.certificate.location": self.schema_registry_certificate_location,
            "ssl.key.location": self.schema_registry_key_location,
        }
        config = {k: v for k, v in out.items() if v}
        if self.schema_registry_basic_auth:
            config["basic.auth.user.info"] = self.schema_registry_basic_auth.get_secret_value()
        return config

    def client_config(self) -> dict[str, str]:
        out: dict[str, str] = {"security.protocol": self.security_protocol}
        plain = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        out.update({k: v for k, v in plain.items() if v})
        if self.sasl_password:
            out["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_key_password:
            out["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return out

    def secrets(self) -> list[str]:
        """Secret values, so that any text leaving the process can be scrubbed of them."""
        values = [self.sasl_password, self.ssl_key_password, self.schema_registry_basic_auth]
        return [v.get_secret_value() for v in values if v and v.get_secret_value()]


# Where `eos run` (and the demo's first processor) serve /metrics when
# EOS_METRICS_PORT is not given.
DEFAULT_METRICS_PORT = 9464


def split_list(value: object) -> object:
    """A list setting from the environment: comma-separated (A,B) or a JSON list."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [t.strip() for t in value.split(",") if t.strip()]
    return value


def _default_state_dir() -> Path:
    """$XDG_STATE_HOME/eos, or ~/.local/state/eos (a relative XDG_STATE_HOME is ignored,
    as the XDG spec says)."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "eos"


class EngineSettings(BaseSettings):
    """The transactional engine's settings. Env: EOS_<FIELD NAME IN UPPER CASE>."""

    model_config = SettingsConfigDict(env_prefix="EOS_", env_file=".env", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    group_id: str = "eos"
    input_topics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    output_topic: str | None = Field(default=None, description="for single-output apps")
    dlq_topic: str = "eos.dlq"
    mode: Mode = Mode.EXACTLY_ONCE

    # A stable id per instance: a restarted instance fences its own zombie at once. Unset,
    # `eos run` makes it <hostname>-<n>, n the lowest slot of the group free on this host
    # (eos/engine/identity.py); given, no other live process on this host may hold it.
    transactional_id_prefix: str = "eos"
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="unique per process; unset: <hostname>-<lowest free slot of the group>",
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="instance slot locks and local state stores ($XDG_STATE_HOME/eos)",
    )
    # group.instance.id = the instance id: a restart within the session timeout gets its
    # partitions back with no rebalance; a member gone for good (or stopped cleanly: a
    # static member does not leave the group) holds them until the session times out.
    static_membership: bool = False

    auto_offset_reset: Literal["earliest", "latest", "error"] = "earliest"
    group_protocol: Literal["classic", "consumer"] = "classic"
    partition_assignment_strategy: Literal["cooperative-sticky", "range", "roundrobin"] = (
        "cooperative-sticky"
    )

    # Defaults from the benchmark sweep in the README: throughput levels off past 2,000;
    # a longer wait only adds latency.
    batch_max_records: int = Field(default=2000, ge=1, le=100_000)
    batch_max_ms: int = Field(default=100, ge=1, le=60_000)
    # About how long a batch (one transaction) may take: fewer records per batch when
    # they are slow to process (eos.engine.pacing).
    batch_target_ms: int = Field(default=1000, ge=10, le=600_000)
    transaction_timeout_ms: int = Field(default=60_000, ge=1000)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    session_timeout_ms: int = Field(default=45_000, ge=1000)
    # How soon a member hears of a rebalance (classic protocol): under an eager assignor
    # the others wait for it, so a takeover is this much shorter than librdkafka's 3 s.
    heartbeat_interval_ms: int = Field(default=1000, ge=100)

    retry_max_attempts: int = Field(default=5, ge=1, description="per record, transient errors")
    backoff_initial_ms: int = Field(default=100, ge=1)
    backoff_max_ms: int = Field(default=10_000, ge=1)
    isolate_after_aborts: int = Field(
        default=3, ge=1, description="aborts of one batch before it is split to find a culprit"
    )

    breaker_window: int = Field(default=1000, ge=10, description="recent records considered")
    breaker_max_dlq_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_min_records: int = Field(default=100, ge=1)
    breaker_max_consecutive: int = Field(default=200, ge=1)

    # /metrics, /healthz and /readyz (eos/engine/probe.py). Unset: none from the library;
    # `eos run` serves on DEFAULT_METRICS_PORT. 0: none.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 to be scraped")

    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    # `eos run` checks it can reach the cluster and the registry and exits (2) in one
    # line when it cannot; a supervised service started before them waits instead.
    startup_wait: bool = Field(
        default=False,
        description="at start, wait for an unreachable cluster or registry instead of exiting",
    )
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    client_overrides: dict[str, str] = Field(
        default_factory=dict, description="extra librdkafka properties for both clients"
    )

    def secrets(self) -> list[str]:
        """Every secret value, from the security settings and from client overrides whose
        property name says it is one (sasl.password, ssl.keystore.password, ...)."""
        marked = ("password", "secret", "token")
        overrides = [
            v for k, v in self.client_overrides.items() if v and any(m in k for m in marked)
        ]
        return [*self.security.secrets(), *overrides]

    @property
    def transaction_settle_s(self) -> float:
        """2 x the transaction timeout and a margin: by then any transaction, and any
        call on one (init_transactions may wait out an old one), has ended."""
        return 2 * self.transaction_timeout_ms / 1000 + 30

    @property
    def restore_stall_s(self) -> float:
        """How long a store's restore may make no progress: long enough for the
        coordinator to abort a dead owner's open transaction (which holds the changelog's
        last stable offset back until then)."""
        return self.transaction_settle_s

    @property
    def health_stall_s(self) -> float:
        """How long the run loop may not come round before /healthz fails: longer than
        its longest own deadline (a transactional call's)."""
        return self.transaction_settle_s

    @property
    def incremental_rebalance(self) -> bool:
        """The group rebalances incrementally: a member joining or leaving moves only the
        partitions that change hands, and the others keep processing meanwhile."""
        return (
            self.group_protocol == "consumer"
            or self.partition_assignment_strategy == "cooperative-sticky"
        )

    @property
    def transactional_id(self) -> str:
        """Scoped by group and instance: two apps, or two instances, never share one."""
        return f"{self.transactional_id_prefix}-{self.group_id}-{self.instance_id}"

    @field_validator("state_dir", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("input_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        return split_list(value)

    @model_validator(mode="after")
    def _check(self) -> EngineSettings:
        if self.transaction_timeout_ms >= self.max_poll_interval_ms:
            raise ValueError(
                f"EOS_TRANSACTION_TIMEOUT_MS ({self.transaction_timeout_ms}) must be below "
                f"EOS_MAX_POLL_INTERVAL_MS ({self.max_poll_interval_ms}): a transaction must "
                "end before the group gives the instance's partitions away"
            )
        if self.batch_max_ms >= self.transaction_timeout_ms:
            raise ValueError(
                f"EOS_BATCH_MAX_MS ({self.batch_max_ms}) must be below "
                f"EOS_TRANSACTION_TIMEOUT_MS ({self.transaction_timeout_ms})"
            )
        if self.backoff_initial_ms > self.backoff_max_ms:
            raise ValueError(
                f"EOS_BACKOFF_INITIAL_MS ({self.backoff_initial_ms}) is above "
                f"EOS_BACKOFF_MAX_MS ({self.backoff_max_ms})"
            )
        if self.backoff_max_ms * 2 >= self.max_poll_interval_ms:
            raise ValueError(
                f"EOS_BACKOFF_MAX_MS ({self.backoff_max_ms}) must be well below "
                f"EOS_MAX_POLL_INTERVAL_MS ({self.max_poll_interval_ms})"
            )
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"EOS_HEARTBEAT_INTERVAL_MS ({self.heartbeat_interval_ms}) must be at most a "
                f"third of EOS_SESSION_TIMEOUT_MS ({self.session_timeout_ms}), so a missed "
                "heartbeat or two does not end the session"
            )
        if self.dlq_topic in self.input_topics:
            raise ValueError(f"EOS_DLQ_TOPIC ({self.dlq_topic}) is also an input topic")
        return self
