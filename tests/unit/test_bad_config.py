"""Each bad configuration a first-day user meets: one line naming what to fix, a
non-zero exit, no traceback. Real processes (`python -m eos`), no broker needed: the
cluster and registry addresses are ports nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eos.ledger.settings import LedgerSettings

NOTHING = "127.0.0.1:1"  # a port nothing listens on: connections are refused at once
HANG_GUARD_S = 60  # a hang fails the test; how fast it answers is for the closing figures


def _eos(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EOS_")}
    return subprocess.run(
        [sys.executable, "-m", "eos", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        cwd=tmp_path,  # no .env from the checkout
        env={**clean, "EOS_METRICS_PORT": "0", "EOS_STATE_DIR": str(tmp_path), **env},
        stdin=subprocess.DEVNULL,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert out.count("\n") == 1, out
    return out


def test_a_wrong_bootstrap_server_names_the_setting(tmp_path: Path) -> None:
    result = _eos(tmp_path, "run", "ledger", EOS_BOOTSTRAP_SERVERS=NOTHING)
    assert result.returncode == 2
    line = _one_line(result)
    assert f"cannot reach the Kafka cluster at {NOTHING}" in line
    assert "EOS_BOOTSTRAP_SERVERS / --bootstrap-servers" in line


def test_a_wrong_bootstrap_server_fails_every_connecting_command(tmp_path: Path) -> None:
    for args in (
        ("ledger", "setup"),
        ("produce", "payments", "--count", "1"),
        ("lag", "--topic", "payments"),
    ):
        result = _eos(tmp_path, *args, EOS_BOOTSTRAP_SERVERS=NOTHING)
        assert result.returncode == 2, args
        assert "EOS_BOOTSTRAP_SERVERS" in _one_line(result), args


def test_an_unreachable_registry_names_the_setting_without_its_password(
    tmp_path: Path,
) -> None:
    url = f"http://svc:hunter2@{NOTHING}/apis/ccompat/v7"
    result = _eos(tmp_path, "schemas", "register", EOS_SCHEMA_REGISTRY_URL=url)
    assert result.returncode == 2
    line = _one_line(result)
    assert "cannot reach the schema registry at http://***@127.0.0.1:1/" in line
    assert "EOS_SCHEMA_REGISTRY_URL" in line and "hunter2" not in line


def test_client_overrides_that_are_not_json(tmp_path: Path) -> None:
    result = _eos(tmp_path, "run", "ledger", EOS_CLIENT_OVERRIDES="notjson")
    assert result.returncode == 2
    assert "EOS_CLIENT_OVERRIDES cannot be read: give a JSON object" in _one_line(result)


def test_an_unknown_currency_names_the_ledger_variable(tmp_path: Path) -> None:
    # A command that reads its settings before it connects: no broker needed (`eos run
    # ledger` reads them in the app's factory, checked against the real cluster in
    # tests/integration/test_interrupt_and_reach.py).
    result = _eos(tmp_path, "ledger", "setup", EOS_LEDGER_CURRENCIES="EUR,XXX")
    assert result.returncode == 2
    line = _one_line(result)
    assert "EOS_LEDGER_CURRENCIES: unknown currency code(s) XXX" in line


def test_ledger_settings_errors_name_the_real_variable_and_no_flag(tmp_path: Path) -> None:
    result = _eos(tmp_path, "ledger", "setup", EOS_LEDGER_DEDUP_WINDOW_S="-1")
    assert result.returncode == 2
    line = _one_line(result)
    assert "EOS_LEDGER_DEDUP_WINDOW_S: Input should be greater than 0" in line
    assert "--dedup-window-s" not in line and " EOS_DEDUP" not in line


def test_list_settings_take_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOS_LEDGER_CURRENCIES", "EUR, USD")
    assert LedgerSettings().currencies == ["EUR", "USD"]
    monkeypatch.setenv("EOS_LEDGER_CURRENCIES", "EUR")
    assert LedgerSettings().currencies == ["EUR"]
    monkeypatch.setenv("EOS_LEDGER_CURRENCIES", '["GBP"]')
    assert LedgerSettings().currencies == ["GBP"]


def test_a_module_that_cannot_be_imported_says_what_was_not_found(tmp_path: Path) -> None:
    result = _eos(tmp_path, "run", "nosuchmodule:build")
    assert result.returncode == 2
    assert "cannot import nosuchmodule" in _one_line(result)


def test_the_current_directory_is_importable(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("x = 1\n")
    result = _eos(tmp_path, "run", "mine:x")
    assert result.returncode == 2
    assert "mine has no App or factory 'x'" in _one_line(result)


def test_a_misspelled_variable_is_warned_about(tmp_path: Path) -> None:
    result = _eos(tmp_path, "run", "nosuchmodule:build", EOS_BOOTSTRAP_SERVER="x:1")
    lines = (result.stdout + result.stderr).splitlines()
    assert any(
        "EOS_BOOTSTRAP_SERVER is not a setting of eos and is ignored; "
        "did you mean EOS_BOOTSTRAP_SERVERS?" in line
        for line in lines
    ), lines
    assert "Traceback" not in result.stderr
