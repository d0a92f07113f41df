"""AppProcess reads the session timeout its app runs with, as the app would: its
argument first, then its settings, then the test's environment, then the default."""

from __future__ import annotations

import pytest

from eos.testing.apps import AppProcess


def test_the_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_SESSION_TIMEOUT_MS", "30000")
    app = AppProcess(
        "events", {"EOS_SESSION_TIMEOUT_MS": "20000"}, args=["--session-timeout-ms", "7000"]
    )
    assert app.session_timeout() == 7.0


def test_then_its_settings_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_SESSION_TIMEOUT_MS", "30000")
    assert AppProcess("events", {"EOS_SESSION_TIMEOUT_MS": "20000"}).session_timeout() == 20.0
    assert AppProcess("events", {}).session_timeout() == 30.0


def test_else_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EOS_SESSION_TIMEOUT_MS", raising=False)
    assert AppProcess("events", {}).session_timeout() == 45.0
