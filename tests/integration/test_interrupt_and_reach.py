"""Against the real cluster: Ctrl-C in `eos produce payments` delivers what it queued,
says what was not sent and exits 130 without a traceback; `eos run` with the cluster up
but the registry unreachable, or a ledger setting invalid, says so in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import read_committed

HANG_GUARD_S = 120


def _env(cluster: KafkaCluster, tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EOS_")}
    return {
        **clean,
        "EOS_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "EOS_SCHEMA_REGISTRY_URL": cluster.schema_registry_url,
        "EOS_METRICS_PORT": "0",
        "EOS_STATE_DIR": str(tmp_path),
        **extra,
    }


def _eos(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eos", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )


def test_ctrl_c_in_produce_payments_flushes_and_reports(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = eos_topic("payments-interrupted", 3)
    env = _env(eos_cluster, tmp_path, EOS_LEDGER_PAYMENTS_TOPIC=topic)
    # Its schema under the private topic's subject, as `eos ledger setup` registers it.
    setup = _eos(env, tmp_path, "schemas", "register")
    assert setup.returncode == 0, setup.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "eos", "produce", "payments", "--count", "1000000"],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    while "produce payments:" not in proc.stdout.readline():  # producing by now
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=HANG_GUARD_S)

    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    found = re.search(r"interrupted: ([\d,]+) of 1,000,000 records delivered", lines[0])
    assert found, lines[0]
    delivered = int(found.group(1).replace(",", ""))
    assert 0 < delivered < 1_000_000
    assert "0 queued but not delivered" in lines[0]
    # What it says was delivered is in the topic, no more and no less.
    assert len(read_committed(eos_cluster, topic, isolation="read_uncommitted")) == delivered


def test_run_with_the_registry_unreachable_names_the_setting(
    eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    env = _env(eos_cluster, tmp_path, EOS_SCHEMA_REGISTRY_URL="http://127.0.0.1:1/apis/ccompat/v7")
    started = time.monotonic()
    result = _eos(env, tmp_path, "run", "ledger")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out and out.count("\n") == 1, out
    assert "cannot reach the schema registry at http://127.0.0.1:1/" in out
    assert "EOS_SCHEMA_REGISTRY_URL" in out
    print(f"answered in {time.monotonic() - started:.1f}s")  # for the record, not asserted


def test_run_ledger_names_an_invalid_ledger_setting(
    eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    env = _env(eos_cluster, tmp_path, EOS_LEDGER_CURRENCIES="EUR,XXX")
    result = _eos(env, tmp_path, "run", "ledger")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out and out.count("\n") == 1, out
    assert "EOS_LEDGER_CURRENCIES: unknown currency code(s) XXX" in out
    assert "--currencies" not in out
