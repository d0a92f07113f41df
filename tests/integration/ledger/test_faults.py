"""The ledger exactly once under faults: repeated SIGKILL mid-transaction, and a rebalance
from one instance to two and back.

Every processor is a real `eos run ledger` subprocess against the real broker and
registry, on its own fresh set of topics (4 partitions); the load comes from the ledger's
own generator (funding first, then payments with duplicates, invalid payments and
undecodable bytes), and `verify` reads every committed output to check each payment has
exactly one outcome and the books balance.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import pytest
from confluent_kafka import TopicPartition

from eos.config import EngineSettings
from eos.errors import RunFailed
from eos.kafka import offsets as kafka_offsets
from eos.ledger.generator import LoadSpec, produce_payments
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify import Report, verify
from eos.testing.cluster import KafkaCluster
from eos.tools.demo import wait_caught_up
from tests.integration.ledger.private import LedgerProcessor, private_ledger
from tests.integration.processes import EndOffsets, wait_until

PARTITIONS = 4
ACCOUNTS = 200
# Short timeouts: a SIGKILLed member leaves the group (and a dead transaction is aborted)
# within seconds rather than the defaults' minute.
PROCESSOR_ENV = {"EOS_TRANSACTION_TIMEOUT_MS": "15000", "EOS_SESSION_TIMEOUT_MS": "6000"}
LOAD = LoadSpec(
    count=50_000,
    accounts=ACCOUNTS,
    duplicates=0.02,
    invalid=0.03,
    garbage=0.001,
    funding="skip",
)


@dataclass
class Books:
    """A fresh set of ledger topics, the settings naming them (in process and as env for
    the processors), and the processors started on them."""

    cluster: KafkaCluster
    tag: str
    env: dict[str, str]
    engine: EngineSettings
    ledger: LedgerSettings
    processors: list[LedgerProcessor] = field(default_factory=list)

    def start(self, instance_id: str) -> LedgerProcessor:
        proc = LedgerProcessor(instance_id, {**os.environ, **self.env, **PROCESSOR_ENV})
        self.processors.append(proc)
        return proc

    def produce(self, spec: LoadSpec) -> Counter[str]:
        return produce_payments(self.engine, self.ledger, spec).kinds

    def fund(self, *running: LedgerProcessor) -> Counter[str]:
        """Fund every account from external ones and wait until that is posted."""
        kinds = self.produce(LoadSpec(count=0, accounts=ACCOUNTS, funding="only", seed=1))
        self.wait_caught_up(*running, timeout=60)
        return kinds

    def wait_caught_up(self, *running: LedgerProcessor, timeout: float) -> None:
        """The group has committed every payment and credit leg (demo's check)."""
        try:
            wait_caught_up(
                self.engine, self.ledger, {p.name: p.proc for p in running}, timeout=timeout
            )
        except RunFailed as exc:  # the demo's way to fail
            raise AssertionError(f"{exc}\n" + "\n".join(p.tail() for p in running)) from None

    def verify(self) -> Report:
        return verify(
            self.cluster.bootstrap_servers,
            self.cluster.schema_registry_url,
            self.ledger,
            self.engine.dlq_topic,
            timeout=60,
        )


@pytest.fixture
def books(eos_cluster: KafkaCluster) -> Iterator[Books]:
    private = private_ledger(eos_cluster, "lf", PARTITIONS)
    b = Books(eos_cluster, private.tag, private.env, private.engine, private.ledger)
    yield b
    for proc in b.processors:
        if proc.alive():
            proc.kill()  # SIGKILL ends a stopped (SIGSTOP) process too


class Loader:
    """The generator in a thread: one run of `spec`, or, with `until`, runs of
    spec.count payments (each with its own seed) until `until` is set."""

    def __init__(self, books: Books, spec: LoadSpec, until: threading.Event | None = None):
        self.books = books
        self.spec = spec
        self.until = until
        self.kinds: Counter[str] = Counter()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for run in range(1_000):
                seed = None if self.spec.seed is None else self.spec.seed + run
                self.kinds.update(self.books.produce(replace(self.spec, seed=seed)))
                if self.until is None or self.until.is_set():
                    return
        except BaseException as exc:  # reported by the test thread
            self.errors.append(exc)

    def join(self, timeout: float) -> Counter[str]:
        if self.until is not None:
            self.until.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the generator still runs after {timeout}s"
        assert not self.errors, self.errors
        return self.kinds


class Offsets(EndOffsets):
    """The group's committed offsets on the payments topic, and the output topics' end
    offsets."""

    def __init__(self, books: Books) -> None:
        config = books.cluster.client_config()
        s = books.ledger
        outputs = (
            s.entries_topic,
            s.credits_topic,
            s.rejected_topic,
            s.balances_changelog,
            s.dedup_changelog,
        )
        super().__init__(config, [TopicPartition(t, p) for t in outputs for p in range(PARTITIONS)])
        self._group = books.engine.group_id
        self._offsets = kafka_offsets.Offsets(config)
        self._payments = [(s.payments_topic, p) for p in range(PARTITIONS)]

    def payments(self, partitions: Iterable[int] = range(PARTITIONS), stable: bool = True) -> int:
        """Payments committed by the group (on the given partitions). Not stable: at once,
        counting only committed transactions, where stable waits out an open one."""
        wanted = [tp for tp in self._payments if tp[1] in set(partitions)]
        return kafka_offsets.total(self._offsets.committed(self._group, wanted, stable))


def _assert_accounted(report: Report, inputs: Counter[str]) -> None:
    """Every record sent has one outcome: posted, rejected, dead-lettered, or dropped as
    the duplicate it is."""
    assert report.ok, report.render()
    sent = sum(inputs.values())
    outcomes = report.posted + report.rejected + report.dead_lettered + report.duplicates
    assert report.summary["inputs"] == sent == outcomes, (dict(inputs), report.render())
    assert report.duplicates == inputs["duplicate"], report.render()
    assert report.summary["undecodable inputs"] == inputs["undecodable"], report.render()
    assert report.dead_lettered == inputs["undecodable"], report.render()
    assert report.rejected >= inputs["invalid"], report.render()
    assert report.posted >= inputs["funding"] > 0, report.render()


def test_repeated_sigkill_mid_transaction_posts_every_payment_exactly_once(
    books: Books,
) -> None:
    name = f"solo-{books.tag}"  # every restart has the same transactional.id
    offsets = Offsets(books)
    run = books.start(name)
    inputs = books.fund(run)
    start = offsets.payments()
    assert start == inputs["funding"]

    # Paced below the processor's speed, so every kill lands mid-stream and the final
    # run is left work to do (unpaced, the third run could finish it before its kill);
    # and flowing until the last kill, so a run that caught up with the feed still has
    # transactions to be caught in.
    loader = Loader(books, replace(LOAD, seed=2, rate=1_500, count=10_000), threading.Event())
    kills = 3
    restarts: list[LedgerProcessor] = []
    for k in range(1, kills + 1):
        # Each run commits its own share first (the kill before was not the end
        # of it), then dies with a transaction open, mid-stream.
        threshold = start + LOAD.count * k // (kills + 2)

        def reached(threshold: int = threshold) -> bool:
            return offsets.payments() >= threshold

        wait_until(reached, 90, f"{threshold:,} payments committed", run)
        run.kill_when(offsets.open_transaction)
        assert run.proc.returncode == -signal.SIGKILL, run.tail()
        # Read before the next run starts, which could otherwise finish the rest first;
        # not stable, since the killed run's transaction stays open until fenced.
        committed_before_final = offsets.payments(stable=False)
        run = books.start(name)
        restarts.append(run)

    inputs += loader.join(120)
    books.wait_caught_up(run, timeout=120)
    assert run.stop() == 0, run.tail()

    assert LOAD.count * kills // (kills + 2) <= committed_before_final - start < LOAD.count
    report = books.verify()
    _assert_accounted(report, inputs)
    # The final run picked up where the last killed one's last commit left off: it did
    # part of the work (payments and credit legs), the killed runs the rest.
    everything = report.summary["inputs"] + report.summary["credit legs"]
    assert 0 < run.processed() < everything, run.tail()
    # The ledger rebalances incrementally, so a restart joins at once rather than
    # waiting for the killed run to time out of the group (eos.engine.recovery).
    assert not any(r.logged("is still in the group; waiting") for r in restarts), run.tail()


def test_a_second_instance_joins_mid_run_and_leaves_again(books: Books) -> None:
    offsets = Offsets(books)
    a = books.start(f"a-{books.tag}")
    topic = books.ledger.payments_topic
    stop_load = threading.Event()
    try:
        inputs = books.fund(a)
        # Payments keep coming (about 2,000/s) until A has B's partitions back.
        loader = Loader(books, replace(LOAD, count=2_000, rate=2_000, seed=100), stop_load)
        wait_until(lambda: offsets.payments() >= inputs["funding"] + 1_000, 30, "A to post", a)

        b = books.start(f"b-{books.tag}")
        wait_until(lambda: bool(b.partitions("assigned", topic)), 60, "B assigned", a, b)
        to_b = b.partitions("assigned", topic)
        assert to_b < set(range(PARTITIONS)), b.tail()
        assert to_b <= a.partitions("revoked", topic), a.tail()
        # B commits payments of its own partitions.
        at_join = offsets.payments(to_b)
        wait_until(lambda: offsets.payments(to_b) >= at_join + 500, 60, "B to post", a, b)

        assert b.stop() == 0, b.tail()
        assert to_b <= b.partitions("revoked", topic), b.tail()
        # A's first "assigned" line is its initial assignment; a later one hands B's
        # partitions back.
        wait_until(
            lambda: to_b <= a.partitions("assigned", topic, skip=1),
            30,
            "A to get B's partitions back",
            a,
        )
        at_return = offsets.payments(to_b)
        wait_until(lambda: offsets.payments(to_b) > at_return, 30, "A to post on B's partitions", a)

        inputs += loader.join(60)
        books.wait_caught_up(a, timeout=90)
        assert a.stop() == 0, a.tail()
    finally:
        stop_load.set()

    assert len(a.logged("eos.processor: assigned ")) >= 3, a.tail()
    assert b.processed() > 0, b.tail()
    assert a.processed() > 0, a.tail()
    _assert_accounted(books.verify(), inputs)
