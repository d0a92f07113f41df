"""`eos chaos` at a small size: its own 3-broker stack, every kind of fault, the verifier.

It starts a private stack in tmp_path on its own ports (never the shared one on
9092/8081) and stops it again; artifacts come from the shared cache.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from eos.stack.artifacts import ToolMissing, resolve
from eos.stack.layout import StackLayout
from eos.tools.commands import eos_command

pytestmark = pytest.mark.slow

KAFKA_PORT = 29292  # and the 5 after it: 3 brokers x (broker, controller)
REGISTRY_PORT = 28181
TIMEOUT = 240.0


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_short_chaos_run_holds_and_verifies(tmp_path: Path) -> None:
    try:
        resolve(StackLayout.create(run=tmp_path / "resolve"))
    except ToolMissing as exc:
        pytest.skip(f"the local stack cannot run here: {exc}")
    ports = [*range(KAFKA_PORT, KAFKA_PORT + 6), REGISTRY_PORT]
    if not all(_free(p) for p in ports):
        pytest.skip(f"ports {ports} are not free")
    argv = eos_command(
        "chaos",
        "--payments", "20000",
        "--rate", "2000",
        "--processors", "2",
        "--kills", "2",
        "--pauses", "1",
        "--bounces", "1",
        "--registry-restarts", "1",
        "--registry-blocks", "1",
        "--registry-block-seconds", "15",
        "--kafka-port", str(KAFKA_PORT),
        "--registry-port", str(REGISTRY_PORT),
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "verification PASSED" in out
    assert "ALL HELD" in out
