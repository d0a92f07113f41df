"""The ledger end to end over SASL_SSL (SCRAM-SHA-512) and an HTTPS registry with basic
auth, on a private `eos stack up --secure` stack: setup, payments, a processor and the
verifier all connect as a user would, and no secret shows in any output or dead letter.

Private rather than the shared stack's: the shared stack stays PLAINTEXT, as every other
test and developer uses it. It starts in about 15 s on ports below the ephemeral range.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from eos.stack.kafka import SecureListener
from eos.stack.layout import StackLayout
from eos.stack.stack import Stack, StackSpec, secure_client_env
from eos.stack.tls import TlsFiles
from eos.testing.stack import free_ports

pytestmark = pytest.mark.integration

USER = "payments-svc"
PASSWORD = "Sx9-" + os.urandom(9).hex()  # random: a leak cannot be a coincidence
KAFKA_BASE_PORT = 25492  # broker + controller
SECURE_BASE_PORT = 25692
REGISTRY_BASE_PORT = 25792


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackSpec, list[str]]]:
    """A private broker with a SASL_SSL listener and a registry over HTTPS with basic
    auth; with what `up` printed."""
    layout = StackLayout.create(run=tmp_path_factory.mktemp("secure") / "run")
    keystore = TlsFiles(layout.run / "data" / "tls").server_keystore
    spec = StackSpec(
        kafka_port=free_ports(KAFKA_BASE_PORT, 2),
        registry_port=free_ports(REGISTRY_BASE_PORT, 1),
        secure=SecureListener(free_ports(SECURE_BASE_PORT, 1), USER, PASSWORD, str(keystore)),
    )
    said: list[str] = []
    stack = Stack(layout, say=said.append)
    try:
        stack.up(spec, timeout=150)
        yield spec, said
    finally:
        stack.down()  # also after an `up` that failed half-way


def _secrets() -> list[str]:
    return [PASSWORD, f"{USER}:{PASSWORD}"]


def test_the_ledger_runs_over_sasl_ssl_and_no_secret_shows_anywhere(
    secure_stack: tuple[StackSpec, list[str]], tmp_path: Path
) -> None:
    spec, said = secure_stack
    client_env = secure_client_env(spec)
    assert client_env["EOS_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert client_env["EOS_SCHEMA_REGISTRY_URL"].startswith("https://")
    # Only what a user sets: the environment of this test run must not point elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOS_")}
    env.update(client_env)
    env.update({"EOS_STATE_DIR": str(tmp_path / "state"), "EOS_METRICS_PORT": "0"})
    shown: list[str] = list(said)

    def eos(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "eos", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        shown.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"eos {' '.join(args)}: exit {done.returncode}\n{shown[-1]}"
        return done

    eos("ledger", "setup")
    eos("produce", "payments", "--count", "3000", "--seed", "11", "--invalid", "0.05")
    # DEBUG: the most a processor ever says, librdkafka's lines included.
    eos("--log-level", "DEBUG", "run", "ledger", "--until-caught-up", "--instance-id", "sec-1")
    report = json.loads(eos("verify", "ledger", "--json").stdout)
    assert report["passed"] and report["summary"]["inputs"] == 3000
    eos("lag")

    dead = _dead_letters(client_env)
    assert dead, "the invalid payments were dead-lettered or rejected"
    for text in shown:
        for secret in _secrets():
            assert secret not in text
    for headers in dead:
        for key, value in headers:
            for secret in _secrets():
                raw = value if isinstance(value, bytes) else str(value or "").encode()
                assert secret not in key and secret.encode() not in raw
    assert any("SASL_SSL" in line for line in said)


def _dead_letters(env: dict[str, str]) -> list[list[tuple[str, Any]]]:
    """The headers of every record in the dead-letter and rejected topics, read over
    SASL_SSL like everything else."""
    consumer = Consumer(
        {
            "bootstrap.servers": env["EOS_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": env["EOS_SASL_MECHANISM"],
            "sasl.username": env["EOS_SASL_USERNAME"],
            "sasl.password": env["EOS_SASL_PASSWORD"],
            "ssl.ca.location": env["EOS_SSL_CA_LOCATION"],
            "group.id": "secure-test-reader",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    topics = ["eos.dlq", "payments.rejected"]
    consumer.subscribe(topics)
    out: list[list[tuple[str, Any]]] = []
    ended: set[tuple[str, int]] = set()
    try:
        for _ in range(600):
            msg = consumer.poll(0.5)
            if msg is None:
                if ended and len(ended) >= len(consumer.assignment()):
                    break
                continue
            if msg.error():
                ended.add((msg.topic() or "", msg.partition() or 0))
                continue
            headers = msg.headers() or []
            out.append(list(headers.items() if isinstance(headers, dict) else headers))
    finally:
        consumer.close()
    return out
