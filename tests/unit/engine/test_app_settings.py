"""What an app implies for its group: the assignor, by protocol."""

from __future__ import annotations

from eos.config import EngineSettings
from eos.engine.app import App, _effective_settings
from eos.engine.state import StateStore


def _stateful() -> App:
    return App(
        name="s",
        transform=lambda _r: [],
        inputs={"a": None, "b": None},
        outputs={},
        stores=(StateStore("s", "s.changelog"),),
        assignment_strategy="cooperative-sticky",
    )


def test_a_classic_group_uses_the_assignor_the_app_asks_for() -> None:
    settings = _effective_settings(
        EngineSettings(partition_assignment_strategy="range"), _stateful()
    )
    assert settings.partition_assignment_strategy == "cooperative-sticky"
    assert settings.input_topics == ["a", "b"]


def test_a_kip848_stateful_group_asks_the_broker_for_range() -> None:
    # Client-side assignor names mean nothing to the broker; range co-partitions.
    settings = _effective_settings(EngineSettings(group_protocol="consumer"), _stateful())
    assert settings.client_overrides["group.remote.assignor"] == "range"
