"""The `eos` command line: which options each command shows, typos, and failing cleanly.
No broker needed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from eos.cli import cli, main


def _eos(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="eos")


def _text(result: Result) -> str:
    """The output with help's line wrapping undone."""
    return " ".join(result.output.split())


def test_ledger_setup_shows_its_own_and_its_connection_options_only() -> None:
    result = _eos("ledger", "setup", "--help")
    assert result.exit_code == 0, result.output
    assert "--partitions" in result.output
    assert "--bootstrap-servers" in result.output
    assert "--schema-registry-url" in result.output
    assert "--dlq-topic" in result.output
    assert "--batch-max-ms" not in result.output
    assert "--group-id" not in result.output


def test_schemas_commands_show_only_what_naming_the_app_and_registry_needs() -> None:
    result = _eos("schemas", "check", "--help")
    assert result.exit_code == 0, result.output
    assert "[APP]" in result.output
    assert "--schema-registry-url" in result.output
    assert "--batch-max-ms" not in result.output


def test_run_shows_every_engine_setting_with_its_env_var_and_default() -> None:
    result = _eos("run", "--help")
    assert result.exit_code == 0, result.output
    text = _text(result)
    assert "--batch-max-ms" in text
    assert "[env: EOS_BATCH_MAX_MS; default: 100]" in text
    assert "--until-caught-up" in text
    assert "--stats-json" in text
    assert "--security" not in text  # nested settings come from the environment


def test_dlq_replay_shows_the_engine_settings() -> None:
    result = _eos("dlq", "replay", "--help")
    assert result.exit_code == 0, result.output
    assert "EOS_DLQ_TOPIC" in result.output
    assert "--batch-max-records" in result.output


def test_a_mistyped_command_gets_a_suggestion() -> None:
    result = _eos("ledgr")
    assert result.exit_code != 0
    assert "Did you mean 'ledger'?" in result.output


def test_a_mistyped_subcommand_gets_a_suggestion() -> None:
    result = _eos("stack", "stauts")
    assert result.exit_code != 0
    assert "Did you mean 'status'?" in result.output


def test_a_mistyped_flag_gets_a_suggestion() -> None:
    result = _eos("ledger", "setup", "--partitons", "3")
    assert result.exit_code == 2
    assert "--partitions" in result.output


def test_an_app_that_cannot_be_imported_exits_2_without_a_traceback() -> None:
    result = _eos("run", "nosuchmodule:build")
    assert result.exit_code == 2
    assert "eos run:" in result.output
    assert "nosuchmodule" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_an_app_that_is_no_factory_exits_2() -> None:
    result = _eos("run", "noseparator")
    assert result.exit_code == 2
    assert "neither a known app" in result.output


def test_an_invalid_setting_names_the_flag_and_env_var_and_exits_2() -> None:
    result = _eos("run", "events", "--batch-max-ms", "0")
    assert result.exit_code == 2
    assert "invalid settings:" in result.output
    assert "EOS_BATCH_MAX_MS / --batch-max-ms" in result.output


def test_a_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both invalid, so the run stops at validation and names the value that won.
    monkeypatch.setenv("EOS_BATCH_MAX_RECORDS", "0")
    result = _eos("run", "events", "--batch-max-records", "1000000")
    assert result.exit_code == 2
    assert "less than or equal to 100000" in result.output


def test_main_returns_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["ledgr"]) == 2
    assert "Did you mean 'ledger'?" in capsys.readouterr().err
