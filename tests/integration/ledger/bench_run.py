"""Run an `eos bench` subcommand against the test cluster, as a user would."""

from __future__ import annotations

import os
import subprocess

from eos.testing.cluster import KafkaCluster
from eos.tools.commands import eos_command


def run_bench(
    cluster: KafkaCluster, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`eos bench ARGS` on `cluster`; its output in `.stdout` and `.stderr`."""
    env = {
        **os.environ,
        "EOS_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "EOS_SCHEMA_REGISTRY_URL": cluster.schema_registry_url,
    }
    return subprocess.run(
        eos_command("bench", *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )
