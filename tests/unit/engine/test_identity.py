"""Instance identity: a slot per group on this host, held by a file lock, so that two
processes never share a transactional.id by accident."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from eos.config import EngineSettings
from eos.engine.identity import InstanceClaim, claim_instance
from eos.errors import ConfigurationError


def _settings(state: Path, group_id: str, instance_id: str | None = None) -> EngineSettings:
    if instance_id is None:  # unset: a slot is chosen
        return EngineSettings(state_dir=state, group_id=group_id)
    return EngineSettings(state_dir=state, group_id=group_id, instance_id=instance_id)


def test_two_claims_in_one_group_take_the_two_lowest_slots(tmp_path: Path) -> None:
    host = socket.gethostname()
    first, a = claim_instance(_settings(tmp_path, group_id="g"))
    second, b = claim_instance(_settings(tmp_path, group_id="g"))
    try:
        assert (first.instance_id, second.instance_id) == (f"{host}-0", f"{host}-1")
        assert first.transactional_id != second.transactional_id
        assert (tmp_path / "g" / "instance-0.lock").read_text().strip() == str(os.getpid())
    finally:
        a.release()
        b.release()


def test_a_released_slot_is_taken_again(tmp_path: Path) -> None:
    host = socket.gethostname()
    _, a = claim_instance(_settings(tmp_path, group_id="g"))
    _, b = claim_instance(_settings(tmp_path, group_id="g"))
    a.release()
    again, c = claim_instance(_settings(tmp_path, group_id="g"))
    try:
        assert again.instance_id == f"{host}-0"
    finally:
        b.release()
        c.release()


def test_an_explicit_instance_id_already_held_is_refused_naming_the_pid(tmp_path: Path) -> None:
    settings = _settings(tmp_path, group_id="g", instance_id="worker-a")
    kept, held = claim_instance(settings)
    assert kept.instance_id == "worker-a"
    try:
        with pytest.raises(ConfigurationError) as info:
            claim_instance(settings)
        message = str(info.value)
        assert "\n" not in message
        assert "worker-a" in message
        assert "group g" in message
        assert f"pid {os.getpid()}" in message
        assert "EOS_INSTANCE_ID" in message
    finally:
        held.release()
    _, again = claim_instance(settings)  # free once released
    again.release()


def test_an_explicit_id_equal_to_a_slot_id_conflicts_with_that_slot(tmp_path: Path) -> None:
    _, slot = claim_instance(_settings(tmp_path, group_id="g"))
    try:
        with pytest.raises(ConfigurationError, match="already running"):
            claim_instance(_settings(tmp_path, group_id="g", instance_id=slot.instance_id))
    finally:
        slot.release()


def test_an_explicit_instance_id_from_the_environment_counts_as_explicit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EOS_INSTANCE_ID", "from-env")
    settings, claim = claim_instance(_settings(tmp_path, group_id="g"))
    claim.release()
    assert settings.instance_id == "from-env"


def test_different_groups_do_not_share_slots(tmp_path: Path) -> None:
    host = socket.gethostname()
    a_settings, a = claim_instance(_settings(tmp_path, group_id="a"))
    b_settings, b = claim_instance(_settings(tmp_path, group_id="b"))
    try:
        assert a_settings.instance_id == b_settings.instance_id == f"{host}-0"
        assert a_settings.transactional_id != b_settings.transactional_id
    finally:
        a.release()
        b.release()


def test_the_transactional_id_is_prefix_group_instance() -> None:
    a = EngineSettings(group_id="orders", instance_id="unit")
    b = EngineSettings(group_id="refunds", instance_id="unit")
    assert a.transactional_id == "eos-orders-unit"
    assert b.transactional_id == "eos-refunds-unit"


def test_the_state_dir_is_created_private_and_groups_cannot_escape_it(tmp_path: Path) -> None:
    state = tmp_path / "state" / "eos"
    _, claim = claim_instance(_settings(state, group_id="../../x"))
    try:
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert [p.parent.parent for p in state.glob("*/*.lock")] == [state]
    finally:
        claim.release()


def test_the_state_dir_defaults_to_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert EngineSettings().state_dir == tmp_path / "eos"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert EngineSettings().state_dir == Path.home() / ".local" / "state" / "eos"
    monkeypatch.setenv("EOS_STATE_DIR", str(tmp_path / "elsewhere"))
    assert EngineSettings().state_dir == tmp_path / "elsewhere"


def test_a_claim_is_a_context_manager_and_release_is_idempotent(tmp_path: Path) -> None:
    settings, claim = claim_instance(_settings(tmp_path, group_id="g"))
    assert isinstance(claim, InstanceClaim)
    with claim:
        assert claim.instance_id == settings.instance_id
    claim.release()
    _, again = claim_instance(_settings(tmp_path, group_id="g"))
    again.release()
    assert again.instance_id == settings.instance_id


def test_a_claim_knows_when_the_slots_earlier_holder_died_holding_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    _, after_kill = claim_instance(_settings(tmp_path, group_id="g"))
    assert after_kill.crashed == str(holder.pid)
    after_kill.release()  # a clean end leaves nothing for the next one
    _, after_release = claim_instance(_settings(tmp_path, group_id="g"))
    assert after_release.crashed == ""
    after_release.release()


_HOLD = """
import sys, time
from pathlib import Path
from eos.config import EngineSettings
from eos.engine.identity import claim_instance
claim_instance(EngineSettings(state_dir=Path(sys.argv[1]), group_id="g"))
print("held", flush=True)
time.sleep(60)
"""
