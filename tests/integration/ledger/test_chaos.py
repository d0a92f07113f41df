"""`eos chaos` at a small size in the test suite: its own 3-broker stack, every kind of
fault (processor SIGKILLs and a SIGSTOP takeover, a broker hard bounce, a registry
kill/restart and block), then the verifier and LSO == HW everywhere. The long run is
`make chaos`.

It starts a private stack in tmp_path on free ports (never the shared one on 9092/8081)
and stops it again; the stack's artifacts come from the shared cache.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from eos.testing.stack import free_ports
from eos.tools.commands import eos_command

pytestmark = pytest.mark.slow

TIMEOUT = 420.0  # the run takes about 4 minutes on 2 cores


def test_short_chaos_run_holds_every_bar_and_verifies(tmp_path: Path) -> None:
    argv = eos_command(
        "chaos",
        "--payments", "45000",
        "--rate", "350",  # about 130 s of load: every fault falls inside it
        "--processors", "2",
        "--kills", "2",
        "--pauses", "1",
        "--bounces", "1",
        "--registry-restarts", "1",
        "--registry-blocks", "1",
        "--registry-block-seconds", "15",
        "--kafka-port", str(free_ports(29292, 6)),
        "--registry-port", str(free_ports(28181, 1)),
        "--run-dir", str(tmp_path / "run"),
        # A kill's seconds (lag back, takeover, survivor gap) are make chaos's bars; this
        # run is about exactly-once and surviving every fault on a shared machine.
        "--no-kill-bars",
    )  # fmt: skip
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    out = result.stdout + result.stderr
    table = out[out.rfind("  kills ") :]
    assert result.returncode == 0, out[-8000:]
    rows = (r"unexpected exits\s+none", r"verification\s+PASSED", r"LSO == HW everywhere\s+yes")
    for row in rows:
        assert re.search(row, table), table
    assert "ALL HELD" in table, table
