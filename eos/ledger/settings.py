"""The ledger's own settings (EOS_LEDGER_*): topic names and business rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from eos.config import split_list
from eos.engine.dlq import replay_failed_topic
from eos.ledger.currencies import CURRENCIES

TOPIC_FIELDS = (
    "payments_topic",
    "credits_topic",
    "entries_topic",
    "rejected_topic",
    "balances_changelog",
    "dedup_changelog",
)


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EOS_LEDGER_", env_file=".env", extra="ignore")

    payments_topic: str = "payments"
    credits_topic: str = "ledger.credits"
    entries_topic: str = "ledger.entries"
    rejected_topic: str = "payments.rejected"
    balances_changelog: str = "ledger.balances.changelog"
    dedup_changelog: str = "ledger.dedup.changelog"

    currencies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: sorted(CURRENCIES),
        description="codes accepted, each of the currency table (eos/ledger/currencies.py)",
    )

    @field_validator("currencies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("currencies")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(c for c in set(value) if c.strip().upper() not in CURRENCIES)
        if unknown:
            raise ValueError(
                f"unknown currency code(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(CURRENCIES))}"
            )
        if not value:
            raise ValueError("name at least one currency code, such as EUR,USD")
        return value

    external_prefix: str = Field(
        default="ext:", description="accounts that model the outside world; may go negative"
    )
    dedup_window_s: int = Field(default=7 * 24 * 3600, gt=0)
    reply_topic_prefix: str = Field(
        default="replies.", description="reply-to topics must start with this (and exist)"
    )

    @classmethod
    def with_prefix(cls, prefix: str) -> LedgerSettings:
        """A private set of topics: each default topic name under `prefix.`."""
        names: dict[str, Any] = {f: f"{prefix}.{cls.model_fields[f].default}" for f in TOPIC_FIELDS}
        return cls(**names)

    def topic_env(self) -> dict[str, str]:
        """The EOS_LEDGER_* variables that name these topics, for another process."""
        return {f"EOS_LEDGER_{f.upper()}": getattr(self, f) for f in TOPIC_FIELDS}

    @classmethod
    def private_env(cls, tag: str, bootstrap_servers: str, registry_url: str) -> dict[str, str]:
        """The EOS_* variables of a processor of a private ledger named `tag`: its
        cluster, its own group, DLQ and transactional ids, and its topics."""
        return {
            "EOS_BOOTSTRAP_SERVERS": bootstrap_servers,
            "EOS_SCHEMA_REGISTRY_URL": registry_url,
            "EOS_GROUP_ID": f"{tag}-ledger",
            "EOS_DLQ_TOPIC": f"{tag}.dlq",
            "EOS_TRANSACTIONAL_ID_PREFIX": tag,
            **cls.with_prefix(tag).topic_env(),
        }

    def own_topics(self) -> set[str]:
        """Topics the ledger reads or writes itself: never a reply-to target."""
        return {getattr(self, f) for f in TOPIC_FIELDS}

    def no_reply_topics(self, dlq_topic: str) -> set[str]:
        """Topics a reply-to may never name: the ledger's own, the DLQ and the topic of
        records its replay could not re-publish."""
        return self.own_topics() | {dlq_topic, replay_failed_topic(dlq_topic)}
