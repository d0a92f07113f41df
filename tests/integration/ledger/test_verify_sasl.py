"""`eos verify ledger` over SASL_PLAINTEXT (mechanism PLAIN), on a real broker.

A private one-broker stack (no registry of its own: the session's registry holds the
schemas) listens with PLAINTEXT, where the books are written, and with SASL_PLAINTEXT for
one user, where the verifier reads them with the processor's EOS_SECURITY_PROTOCOL and
EOS_SASL_* settings. It starts in about 5 s on ports below the ephemeral range.

Private rather than the shared stack's: a SASL listener there would need every developer
to restart their stack, and `eos stack up` to claim another port by default.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.cli import main
from eos.ledger.settings import LedgerSettings
from eos.stack.artifacts import ToolMissing
from eos.stack.kafka import SaslPlain
from eos.stack.layout import StackLayout
from eos.stack.stack import Stack, StackSpec
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic
from eos.testing.stack import free_ports
from tests.integration.ledger.test_verify import PARTITIONS, Books, write_books

USER = "verifier"
PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"
KAFKA_BASE_PORT = 25092  # broker + controller
SASL_BASE_PORT = 25292


@pytest.fixture(scope="module")
def sasl_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSpec]:
    """A private broker with an extra SASL_PLAINTEXT listener admitting USER."""
    layout = StackLayout.create(run=tmp_path_factory.mktemp("sasl") / "run")
    assert layout.run.resolve() != StackLayout.create().run.resolve()
    spec = StackSpec(
        kafka_port=free_ports(KAFKA_BASE_PORT, 2),
        registry=False,
        sasl=SaslPlain(free_ports(SASL_BASE_PORT, 1), USER, PASSWORD),
    )
    stack = Stack(layout, say=lambda _: None)
    try:
        try:
            stack.up(spec, timeout=120)
        except ToolMissing as exc:
            pytest.skip(f"the local stack cannot run here: {exc}")
        yield spec
    finally:
        stack.down()  # also after an `up` that failed half-way


@pytest.fixture
def books(sasl_stack: StackSpec, eos_cluster: KafkaCluster) -> Iterator[Books]:
    """Consistent books on the private broker, written over PLAINTEXT."""
    cluster = KafkaCluster(sasl_stack.bootstrap_servers, eos_cluster.schema_registry_url, "sasl")
    tag = uuid.uuid4().hex[:8]

    def topic(name: str, **config: str) -> str:
        return create_topic(cluster, f"{name}-{tag}", PARTITIONS, config=config)

    ledger = LedgerSettings(
        payments_topic=topic("payments"),
        credits_topic=topic("ledger.credits"),
        entries_topic=topic("ledger.entries"),
        rejected_topic=topic("payments.rejected"),
        balances_changelog=topic("ledger.balances.changelog", **{"cleanup.policy": "compact"}),
        dedup_changelog=f"ledger.dedup.changelog-{tag}",
    )
    producer = Producer(
        cluster.client_config(
            partitioner="murmur2_random", acks="all", **{"enable.idempotence": True}
        )
    )
    registry = SchemaRegistryClient({"url": cluster.schema_registry_url, "timeout": 10})
    dlq = create_topic(cluster, f"eos.dlq-{tag}", 1)
    b = Books(cluster, ledger, dlq, registry, producer)
    b.register(ledger.payments_topic, "ledger/payment_request")
    b.register(ledger.entries_topic, "ledger/ledger_entry")
    b.register(ledger.rejected_topic, "ledger/payment_rejection")
    b.register(ledger.credits_topic, "ledger/credit_leg")
    write_books(b)
    yield b
    producer.flush(10)


def _verify_over_sasl(
    spec: StackSpec, books: Books, password: str, monkeypatch: pytest.MonkeyPatch
) -> int:
    """`eos verify ledger --json` as a user runs it, reading through the SASL listener."""
    env = {
        **books.ledger.topic_env(),
        "EOS_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "EOS_SASL_MECHANISM": "PLAIN",
        "EOS_SASL_USERNAME": USER,
        "EOS_SASL_PASSWORD": password,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert spec.sasl_bootstrap_servers is not None
    return main(
        [
            "verify",
            "ledger",
            "--json",
            "--bootstrap-servers",
            spec.sasl_bootstrap_servers,
            "--schema-registry-url",
            books.cluster.schema_registry_url,
            "--dlq-topic",
            books.dlq,
        ]
    )


def test_the_verifier_reads_the_books_over_sasl_with_the_processors_credentials(
    sasl_stack: StackSpec,
    books: Books,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert _verify_over_sasl(sasl_stack, books, PASSWORD, monkeypatch) == 0
    out, err = capfd.readouterr()
    report = json.loads(out)
    assert report["passed"] is True, out
    assert report["summary"]["inputs"] == 6
    assert report["summary"]["entries"] == 6
    assert report["summary"]["posted"] == 3
    assert report["rejected_by_reason"] == {"INSUFFICIENT_FUNDS": 1}
    assert PASSWORD not in out + err


def test_a_wrong_password_fails_at_once_with_one_line_naming_no_password(
    sasl_stack: StackSpec,
    books: Books,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    assert _verify_over_sasl(sasl_stack, books, wrong, monkeypatch) == 2
    took = time.monotonic() - started
    # Captured at the file descriptors: librdkafka's own lines would show here too.
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("verification could not complete: the cluster refused the client")
    assert "Authentication failed" in err
    assert "EOS_SASL_PASSWORD" in err
    assert wrong not in err and PASSWORD not in err
    assert took < 15, f"a refusal took {took:.1f}s to report"
