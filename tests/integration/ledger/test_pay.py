"""`eos pay` against the real broker and registry, answered by a real `eos run ledger`
subprocess on its own fresh set of topics: posted, rejected, a retry answered with the
original outcome, and no outcome at all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eos.config import EngineSettings
from eos.errors import RunFailed
from eos.kafka.offsets import Offsets
from eos.ledger.settings import LedgerSettings
from eos.testing.cluster import KafkaCluster
from eos.tools.demo import wait_caught_up
from tests.integration.ledger.private import LedgerProcessor, private_ledger
from tests.integration.processes import Spawned

PARTITIONS = 3
PAY_TIMEOUT = "30"  # generous: the first payment may wait for the processor's start


@dataclass
class Ledger:
    """A fresh set of ledger topics, the environment naming them, and its processor."""

    tag: str
    env: dict[str, str]
    engine: EngineSettings
    settings: LedgerSettings
    processor: Spawned | None = None

    def pay(self, *args: str, timeout: str = PAY_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """`eos pay ARGS` as a subprocess; replies on this ledger's own reply topic unless
        ARGS name one."""
        reply = [] if "--reply-to" in args else ["--reply-to", f"replies.{self.tag}"]
        return subprocess.run(
            [sys.executable, "-m", "eos", "pay", *args, *reply, "--timeout", timeout],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=float(timeout) + 60,
        )

    def caught_up(self) -> None:
        """The processor has committed every payment and credit leg so far."""
        assert self.processor is not None
        try:
            wait_caught_up(self.engine, self.settings, {"ledger": self.processor.proc}, timeout=60)
        except RunFailed as exc:
            raise AssertionError(f"{exc}\n{self.processor.tail()}") from None


def _ledger(cluster: KafkaCluster, prefix: str) -> Ledger:
    private = private_ledger(cluster, prefix, PARTITIONS, EOS_BATCH_MAX_MS="50")
    return Ledger(private.tag, {**os.environ, **private.env}, private.engine, private.ledger)


@pytest.fixture(scope="module")
def ledger(eos_cluster: KafkaCluster) -> Iterator[Ledger]:
    books = _ledger(eos_cluster, "lp")
    books.processor = LedgerProcessor("p1", books.env)
    yield books
    if books.processor.alive():
        assert books.processor.stop() == 0, books.processor.tail()


def _line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line `eos pay` printed, with everything it wrote on failure."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return lines[0]


def _payment_id(line: str) -> str:
    found = re.search(r"payment ([0-9a-f-]{36})", line)
    assert found, line
    return found.group(1)


def test_a_funded_account_pays_and_an_unfunded_one_is_rejected(ledger: Ledger) -> None:
    funding = ledger.pay(
        "--from", "ext:bank", "--to", "alice", "--amount", "100", "--currency", "EUR"
    )
    assert funding.returncode == 0, funding.stderr
    assert _line(funding).startswith("POSTED, ext:bank balance after -100.00 EUR; payment ")
    ledger.caught_up()  # alice's credit is posted before she spends

    paid = ledger.pay(
        "--from", "alice", "--to", "bob", "--amount", "12.34", "--currency", "eur",
        "--reference", "invoice 1",
    )  # fmt: skip
    assert paid.returncode == 0, paid.stderr
    line = _line(paid)
    assert line.startswith("POSTED, alice balance after 87.66 EUR; payment "), line
    assert "(replay)" not in line

    given = str(uuid.uuid4())
    refused = ledger.pay(
        "--from", "carol", "--to", "bob", "--amount", "5", "--currency", "EUR",
        "--payment-id", given,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    assert _line(refused).startswith(f"REJECTED INSUFFICIENT_FUNDS; payment {given} in ")


def test_a_retry_with_the_same_payment_id_gets_the_original_outcome(ledger: Ledger) -> None:
    fund = ledger.pay("--from", "ext:bank", "--to", "dave", "--amount", "50", "--currency", "USD")
    assert fund.returncode == 0, fund.stderr
    ledger.caught_up()
    payment = ["--from", "dave", "--to", "erin", "--amount", "20", "--currency", "USD"]
    first = ledger.pay(*payment)
    assert first.returncode == 0, first.stderr
    pid = _payment_id(_line(first))

    again = ledger.pay(*payment, "--payment-id", pid.upper())  # another spelling, one id
    assert again.returncode == 0, again.stderr
    line = _line(again)
    assert line.startswith(f"POSTED, dave balance after 30.00 USD; payment {pid} (replay) in ")

    rejected = ["--from", "frank", "--to", "erin", "--amount", "1", "--currency", "USD"]
    no = ledger.pay(*rejected)
    assert no.returncode == 1, no.stderr
    rid = _payment_id(_line(no))
    retried = ledger.pay(*rejected, "--payment-id", rid)
    assert retried.returncode == 1, retried.stderr
    assert _line(retried).startswith(f"REJECTED INSUFFICIENT_FUNDS; payment {rid} (replay) in ")


def test_the_reply_topic_is_created_when_missing(ledger: Ledger, eos_cluster: KafkaCluster) -> None:
    topic = f"replies.{ledger.tag}.new-{uuid.uuid4().hex[:6]}"
    result = ledger.pay(
        "--from", "ext:bank", "--to", "gina", "--amount", "1", "--currency", "JPY",
        "--reply-to", topic,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _line(result).startswith("POSTED, ext:bank balance after -1 JPY; payment ")
    with Offsets(eos_cluster.client_config()) as offsets:
        assert offsets.partitions([topic]) == [(topic, 0)]


def test_no_outcome_within_the_timeout_exits_4_and_says_how_to_retry(
    eos_cluster: KafkaCluster,
) -> None:
    idle = _ledger(eos_cluster, "lpi")  # no processor: nobody answers
    pid = str(uuid.uuid4())
    result = idle.pay(
        "--from", "ext:bank", "--to", "hank", "--amount", "1", "--currency", "EUR",
        "--payment-id", pid,
        timeout="2",
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert f"no outcome for payment {pid} within 2s" in message
    assert "may still be decided" in message
    assert f"--payment-id {pid}" in message
