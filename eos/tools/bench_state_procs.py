"""What `eos bench state` runs and watches: ledger processors as child processes, the
probe payments that show when one is processing, and the fill of a dedup changelog.

Only the process boundary: `python -m eos run ledger` with EOS_* variables, signals, its
log file and /proc, and Kafka topics. No engine internals, so the bench measures any
store implementation behind the same command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from eos.config import EngineSettings, Mode
from eos.errors import RunFailed
from eos.kafka.clients import connection_config, consumer_config, make_registry, producer_config
from eos.kafka.partitioner import partition_for
from eos.kafka.produce import Encoded, produce
from eos.ledger.app import REPLY_TO
from eos.ledger.models import PaymentRequest
from eos.ledger.settings import LedgerSettings
from eos.progress import Progress
from eos.serde.avro import AvroEncoder
from eos.serde.schemas import contract
from eos.tools.bench_state_report import processing_moments, status_mb
from eos.tools.commands import eos_command

__all__ = ["Peak", "Probes", "Processor", "fill_changelog", "probe_accounts"]

PROBE_EVERY = 0.1  # seconds between rounds of probes (one per partition)
PROBE_SINK = "bench-probe-sink"
# What the ledger's dedup store writes for a posted debit (eos/ledger/dedup.py), encoded
# as the store encodes it (json.dumps' default separators).
DECISION = '{"t": %d, "f": "%s", "s": "POSTED", "r": null, "b": %d}'


class Peak:
    """The largest VmHWM seen of any processor, in MB; shared by the samplers."""

    def __init__(self) -> None:
        self.mb: float | None = None
        self._lock = threading.Lock()

    def add(self, mb: float) -> None:
        with self._lock:
            self.mb = mb if self.mb is None else max(self.mb, mb)


class Processor:
    """One `eos run ledger`: its log in a file, its peak RSS sampled while it lives
    (VmHWM is a peak, so the last sample before it exits is the one that matters)."""

    def __init__(
        self, name: str, env: dict[str, str], log: Path, peak: Peak, args: Sequence[str] = ()
    ) -> None:
        self.name, self.log, self.peak = name, log, peak
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                eos_command("run", "ledger", "--startup-wait", "true", *args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        self.spawned = time.monotonic()
        self.code: int | None = None
        threading.Thread(target=self._sample_while_alive, daemon=True).start()

    def _status(self) -> str:
        try:
            return Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:  # gone, or no /proc here
            return ""

    def sample(self) -> None:
        mb = status_mb(self._status(), "VmHWM")
        if mb is not None:
            self.peak.add(mb)

    def rss_mb(self) -> float | None:
        return status_mb(self._status(), "VmRSS")

    def _sample_while_alive(self) -> None:
        while self.proc.poll() is None:
            self.sample()
            time.sleep(0.5)

    def lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def check(self, doing: str) -> None:
        """RunFailed, in one line, when the processor has exited."""
        code = self.proc.poll()
        if code is not None:
            last = next((x for x in reversed(self.lines()) if x.strip()), "(empty log)")
            raise RunFailed(
                f"processor {self.name} exited with {code} during {doing} "
                f"(log {self.log}): {last.strip()}"
            )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 90.0) -> int:
        """Signal it and wait for its exit; SIGKILL when it overstays `timeout`."""
        self.sample()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.code = self.proc.wait()
            print(f"  !! processor {self.name} ignored {sig.name} for {timeout:.0f}s: killed")
        return self.code


def probe_accounts(partitions: int) -> list[str]:
    """One external (unfunded, may go negative) debit account per payments partition,
    index = partition, so a round of probes reaches every partition."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        account = f"ext:bench-probe-{n}"
        found.setdefault(partition_for(account.encode(), partitions), account)
        n += 1
    return [found[p] for p in range(partitions)]


class Probes:
    """A round of payments (one per partition) every PROBE_EVERY seconds, each asking
    for a reply on `reply_topic`, and a read_committed reader of the replies: a reply
    read means the payment's transaction committed."""

    def __init__(
        self, engine: EngineSettings, ledger: LedgerSettings, reply_topic: str, partitions: int
    ) -> None:
        self.topic = ledger.payments_topic
        self.reply_topic, self.partitions = reply_topic, partitions
        self.error: str | None = None  # why a probe thread stopped, if one did
        self.accounts = probe_accounts(partitions)
        self.sent: dict[str, tuple[int, float]] = {}
        self.seen: dict[str, float] = {}
        self.sending = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        plain = engine.model_copy(update={"mode": Mode.AT_LEAST_ONCE})
        self._producer = Producer({**producer_config(plain), "linger.ms": 0})
        self._encoder = AvroEncoder(
            make_registry(engine), self.topic, contract("ledger/payment_request", PaymentRequest)
        )
        self._consumer = Consumer(
            {
                **connection_config(consumer_config(engine)),
                "group.id": f"bench-probe-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,  # the answer's moment, not the broker's wait
            }
        )
        self._consumer.assign([TopicPartition(reply_topic, 0, OFFSET_BEGINNING)])
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._read, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        try:
            while not self._stop.wait(PROBE_EVERY):
                if self.sending.is_set():
                    self._send_round()
        except Exception as exc:  # the waiter reports it, rather than time out silently
            self.error = f"probe sender: {type(exc).__name__}: {exc}"

    def _send_round(self) -> None:
        headers: list[tuple[str, str | bytes | None]] = [(REPLY_TO, self.reply_topic.encode())]
        for p, account in enumerate(self.accounts):
            probe = str(uuid.uuid4())
            req = PaymentRequest(
                payment_id=probe,
                debit_account=account,
                credit_account=PROBE_SINK,
                amount_minor=1,
                currency="EUR",
                requested_at=datetime.now(UTC),
            )
            value = self._encoder.encode(req)
            with self._lock:
                self.sent[probe] = (p, time.monotonic())
            self._producer.produce(
                self.topic, value, account.encode(), partition=p, headers=headers
            )
        self._producer.poll(0)

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(500, 0.05):
                    key = msg.key()
                    if msg.error() is None and key:
                        with self._lock:
                            self.seen.setdefault(key.decode(), time.monotonic())
        except Exception as exc:
            self.error = f"probe reader: {type(exc).__name__}: {exc}"

    def wait_processing(
        self,
        proc: Processor,
        doing: str,
        timeout: float,
        report: Callable[[float], None] | None = None,
    ) -> tuple[float, float]:
        """Seconds from the processor's spawn until the first partition, and until every
        partition, answered a probe sent after the spawn. `report(elapsed)` every 2 s."""
        since = proc.spawned
        self.sending.set()
        with self._lock:  # older probes can no longer count: forget them
            self.sent = {k: v for k, v in self.sent.items() if v[1] >= since}
            self.seen = {k: t for k, t in self.seen.items() if k in self.sent}
        last_report = time.monotonic()
        while True:
            proc.check(doing)
            if self.error is not None:
                raise RunFailed(f"{doing}: {self.error}")
            with self._lock:
                moments = processing_moments(self.sent, self.seen, since, self.partitions)
            now = time.monotonic()
            if moments is not None:
                return moments[0] - since, moments[1] - since
            if now - since > timeout:
                raise RunFailed(
                    f"{doing}: processor {proc.name} not processing after {timeout:.0f}s"
                )
            if report is not None and now - last_report >= 2:
                report(now - since)
                last_report = now
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._producer.flush(10)
        self._consumer.close()


def fill_changelog(engine: EngineSettings, topic: str, keys: int, partitions: int) -> float:
    """`keys` debit decisions produced straight to the dedup changelog `topic`, round
    robin over its partitions, all acknowledged; returns the seconds it took. Each `t`
    is now, so the ledger expires none during the bench."""
    plain = engine.model_copy(update={"mode": Mode.AT_LEAST_ONCE})
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer(
        {
            **producer_config(plain),
            "client.id": "eos-bench-state-fill",
            "linger.ms": 50,
            "batch.size": 1_000_000,  # big batches: the fill is bounded by the broker's I/O
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "delivery.report.only.error": True,  # a callback per failure, not per record
            "on_delivery": on_delivery,
        }
    )
    now_ms = int(time.time() * 1000)
    progress = Progress("fill", keys)
    started = time.monotonic()
    for i, (key, value) in enumerate(_decisions(keys, now_ms)):
        produce(producer, Encoded(topic, key.encode(), value.encode(), [], i % partitions))
        if i % 10_000 == 0:
            producer.poll(0)
            progress.update(i)
            if errors:
                break
    remaining = producer.flush(600)
    if errors or remaining:
        first = errors[0].str() if errors else ""
        raise RunFailed(f"fill: {len(errors)} delivery errors ({first}), {remaining} undelivered")
    progress.done(keys)
    return time.monotonic() - started


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _decisions(keys: int, now_ms: int, chunk: int = 10_000) -> Iterator[tuple[str, str]]:
    """(dedup key, value) of `keys` debits: D:<a random UUIDv4> as the ledger spells
    it, a random fingerprint. Random bytes a chunk at a time: uuid4() per key would
    bound the fill at the generator's speed."""
    for start in range(0, keys, chunk):
        count = min(chunk, keys - start)
        pool = os.urandom(24 * count).hex()
        for j in range(count):
            h = pool[48 * j : 48 * j + 48]
            key = f"D:{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
            yield key, DECISION % (now_ms, h[32:48], ((start + j) * 7919) % 10**8)
