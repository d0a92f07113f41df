"""The plugin says nothing in a pytest session that used none of its fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_session_without_eos_fixtures_prints_no_eos_line(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_nothing():\n    assert 1 + 1 == 2\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    eos_lines = [line for line in done.stdout.splitlines() if line.startswith("eos:")]
    assert eos_lines == []
