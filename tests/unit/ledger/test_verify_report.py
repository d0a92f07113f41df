"""The verifier's report as JSON, and `eos verify ledger`'s output and exit codes around
it (the verification itself replaced: no broker needed)."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from eos.cli import cli
from eos.config import EngineSettings
from eos.kafka.reader import Refused
from eos.ledger.verify import Report
from eos.ledger.verify.kinds import DUPLICATE_ENTRY, MISSING_OUTCOME


def _report(*violations: tuple[str, str]) -> Report:
    report = Report(
        examples=1,
        summary={"inputs": 6, "posted": 3, "rejected": 2},
        rejected_by_reason=Counter({"INSUFFICIENT_FUNDS": 1, "INVALID_AMOUNT": 1}),
        notes=["topic eos.dlq does not exist (read as empty)"],
        seconds=1.23456,
    )
    for kind, message in violations:
        report.add(kind, message)
    return report


def test_a_clean_report_as_json() -> None:
    assert json.loads(_report().to_json()) == {
        "passed": True,
        "summary": {"inputs": 6, "posted": 3, "rejected": 2},
        "rejected_by_reason": {"INSUFFICIENT_FUNDS": 1, "INVALID_AMOUNT": 1},
        "violation_count": 0,
        "violations": {},
        "notes": ["topic eos.dlq does not exist (read as empty)"],
        "seconds": 1.235,
    }


def test_every_violation_is_in_the_json_by_kind_in_report_order() -> None:
    report = _report(
        (DUPLICATE_ENTRY, "entry e-1 appears 2 times"),
        (MISSING_OUTCOME, "payment p-1 has no outcome"),
        (DUPLICATE_ENTRY, "entry e-2 appears 3 times"),
    )
    data = json.loads(report.to_json())
    assert data["passed"] is False
    assert data["violation_count"] == 3
    # All messages, though render() shows only `examples` (1) of each kind.
    assert data["violations"] == {
        MISSING_OUTCOME: ["payment p-1 has no outcome"],
        DUPLICATE_ENTRY: ["entry e-1 appears 2 times", "entry e-2 appears 3 times"],
    }
    assert list(data["violations"]) == [MISSING_OUTCOME, DUPLICATE_ENTRY]
    assert "e-2" not in report.render()
    assert report.to_dict() == data


def _verify_returning(
    monkeypatch: pytest.MonkeyPatch, outcome: Report | Exception
) -> list[dict[str, Any]]:
    """`eos verify ledger` with the verification replaced; the calls it got."""
    calls: list[dict[str, Any]] = []

    def fake(*args: Any, **kwargs: Any) -> Report:
        calls.append({"args": args, **kwargs})
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr("eos.ledger.verify.verify", fake)
    return calls


@pytest.mark.parametrize(("violations", "code"), [((), 0), (((MISSING_OUTCOME, "p-1"),), 1)])
def test_json_flag_prints_one_document_and_keeps_the_exit_codes(
    monkeypatch: pytest.MonkeyPatch, violations: tuple[tuple[str, str], ...], code: int
) -> None:
    _verify_returning(monkeypatch, _report(*violations))
    result = CliRunner().invoke(cli, ["verify", "ledger", "--json"])
    assert result.exit_code == code, result.output
    assert json.loads(result.stdout)["passed"] is (code == 0)
    text = CliRunner().invoke(cli, ["verify", "ledger"])
    assert text.exit_code == code
    assert "ledger verification" in text.stdout


def test_verify_connects_with_the_processors_security_and_registry_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _verify_returning(monkeypatch, _report())
    registries: list[EngineSettings] = []

    def make_registry(settings: EngineSettings) -> str:
        registries.append(settings)
        return "reg"

    # By module: the name eos.cli.ledger is also the `ledger` command group.
    monkeypatch.setattr(importlib.import_module("eos.cli.ledger"), "make_registry", make_registry)
    monkeypatch.setenv("EOS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("EOS_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("EOS_SASL_USERNAME", "auditor")
    monkeypatch.setenv("EOS_SASL_PASSWORD", "pw-123")
    monkeypatch.setenv("EOS_SCHEMA_REGISTRY_BASIC_AUTH", "reg:reg-pw")
    result = CliRunner().invoke(cli, ["verify", "ledger", "--bootstrap-servers", "b:9094"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["args"][0] == "b:9094"
    assert call["client_config"]["security.protocol"] == "SASL_PLAINTEXT"
    assert call["client_config"]["sasl.username"] == "auditor"
    assert call["client_config"]["sasl.password"] == "pw-123"
    assert "group.id" not in call["client_config"]
    # The registry client is the processor's (make_registry): basic auth and all.
    assert call["registry"] == "reg"
    (settings,) = registries
    assert settings.security.schema_registry_basic_auth is not None
    assert settings.security.schema_registry_basic_auth.get_secret_value() == "reg:reg-pw"
    assert call["progress"] is not None
    assert "pw-123" not in result.output and "reg-pw" not in result.output


def test_refused_credentials_fail_with_one_line_that_holds_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EOS_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("EOS_SASL_PASSWORD", "hunter2")
    # Whatever a client library puts in its message, the password never gets out.
    _verify_returning(monkeypatch, Refused("the cluster refused the client: bad\nhunter2"))
    result = CliRunner().invoke(cli, ["verify", "ledger"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr
    assert result.stderr.startswith("verification could not complete: the cluster refused")
    assert "EOS_SASL_PASSWORD" in result.stderr


def test_a_timeout_fails_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    _verify_returning(monkeypatch, TimeoutError("1 partition(s) not read to their end"))
    result = CliRunner().invoke(cli, ["verify", "ledger", "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "verification could not complete: 1 partition(s) not read to their end\n"
    )
