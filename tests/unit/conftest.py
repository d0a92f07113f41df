"""Unit tests build EngineSettings and LedgerSettings: keep the developer's EOS_* env and .env
out of every one of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("EOS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file here
