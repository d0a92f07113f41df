"""What a processor SIGKILL costs the rest of the group, for `eos chaos`.

Two figures per kill:

- **survivor commit gap**: the longest time a processor that was not killed committed
  nothing while it had work waiting, within a window from the kill until the killed
  processor's partitions process again (at most `WINDOW` seconds). Bar: `GAP_BAR`.
- **kill takeover**: seconds from the SIGKILL until every input partition the killed
  processor owned at the kill has had its committed offset advance again. Bar:
  `TAKEOVER_BAR`.

How: a `Sampler` thread takes a `Sample` every `SAMPLE_EVERY` seconds for the whole run:
the group's committed offset and the last stable offset (LSO) of every input partition
(payments and credits), and the owner of each partition (`describe_consumer_groups`,
every `OWNERS_EVERY` seconds, never during a broker bounce: member -> assignment, by
instance id). The committed offsets are asked through a consumer of the group that
never joins it, with require_stable off (read_uncommitted): an offset inside a
transaction still open (the killed processor's) would otherwise hold up the whole
fetch; off, the broker answers at once with offsets of committed transactions only,
which is what "committed" means here. Owners are taken only from a
Stable group: during a rebalance members show no assignment, and a survivor stalled by
one must still count as owning its partitions.

A survivor "commits" at a sample when any partition it owns has a committed offset above
the previous sample's; it "has work" when any partition it owns has its LSO more than
`MARKERS` above its committed offset (a settled partition of a transactional topic
shows a commit marker or a few as lag, so that alone is no work). A gap runs from the
later of the window's start and the survivor's last sample that committed or had no work,
to its next sample that commits, or its last one in the window that still has work. A
partition without new input has no reason to commit, so it makes no gap. Both figures
are as fine as the sampling: a commit is seen at the first sample after it, so a
survivor that commits all the time shows a gap of about one sampling interval.

The killed processor's partitions are its owner's at the last sample before the kill; as
a baseline, their highest committed offset until `IN_FLIGHT` seconds after the kill (a
commit the killed process had sent may still land). A partition is back at its first
sample above that baseline; one that never had work after the kill does not count. The
killed processor's instance id comes from its slot's lock file, which holds its pid
(eos/engine/identity.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from confluent_kafka import Consumer, ConsumerGroupState

from eos.config import EngineSettings
from eos.kafka.clients import connection_config, consumer_config, make_admin
from eos.kafka.offsets import TP, Offsets, committed_positions
from eos.ledger.settings import LedgerSettings

__all__ = [
    "GAP_BAR",
    "TAKEOVER_BAR",
    "Kill",
    "KillCost",
    "Sample",
    "Sampler",
    "instance_of",
    "measure",
    "owners_of",
    "survivor_gap",
    "takeover",
]

GAP_BAR = 2.0  # seconds a survivor may commit nothing while it has work, after a kill
TAKEOVER_BAR = 15.0  # seconds until all of a killed processor's partitions move again
WINDOW = 30.0  # seconds after a kill that survivors are watched, at most
SAMPLE_EVERY = 0.15  # seconds between samples: a healthy member commits every ~0.1 s
IN_FLIGHT = 0.5  # seconds after a kill in which its last commit may still land
MARKERS = 4  # lag per partition that is commit markers, not work
OWNERS_EVERY = 0.5  # seconds between asking for the group's assignment


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic, when the committed offsets were read
    committed: Mapping[TP, int]
    ends: Mapping[TP, int]  # last stable offsets
    owners: Mapping[TP, str]  # instance id per partition (of the last Stable group)


@dataclass(frozen=True)
class Kill:
    at: float  # monotonic, just before the SIGKILL
    name: str  # the processor's name in the pool
    instance: str | None  # its instance id; None when it could not be found


@dataclass(frozen=True)
class KillCost:
    name: str
    takeover: float  # seconds; infinity when never seen (or not measurable)
    gap: float  # seconds, the longest survivor commit gap in the window
    survivor: str  # whose gap that was ("" when none had one)
    # seconds, the longest time between two samples in the window: a gap is known only
    # to within this (the sampler shares this process, and its CPU, with the load)
    blind: float = 0.0


def measure(samples: Sequence[Sample], kills: Sequence[Kill]) -> list[KillCost]:
    out = []
    for kill in kills:
        back = takeover(samples, kill)
        end = kill.at + min(back, WINDOW)
        gap, who = survivor_gap(samples, kill, end)
        out.append(KillCost(kill.name, back, gap, who, blind(samples, kill.at, end)))
    return out


def blind(samples: Sequence[Sample], start: float, end: float) -> float:
    """The longest interval between consecutive samples that overlaps (start, end]."""
    pairs = pairwise(s.at for s in samples)
    return max((b - a for a, b in pairs if b > start and a <= end), default=0.0)


def takeover(samples: Sequence[Sample], kill: Kill) -> float:
    """Seconds from the kill until each partition its processor owned has advanced past
    its committed offset at the kill (+ `IN_FLIGHT`); infinity when one never did, or
    when what it owned is unknown."""
    before = [s for s in samples if s.at <= kill.at]
    if kill.instance is None or not before:
        return float("inf")
    owned = [tp for tp, who in before[-1].owners.items() if who == kill.instance]
    if not owned:
        return float("inf")
    settle = kill.at + IN_FLIGHT
    early = [s for s in samples if s.at <= settle]
    later = [s for s in samples if s.at > settle]
    longest = 0.0
    for tp in owned:
        base = max(s.committed.get(tp, -1) for s in early)
        moved = next((s.at for s in later if s.committed.get(tp, -1) > base), None)
        if moved is not None:
            longest = max(longest, moved - kill.at)
        elif any(s.ends.get(tp, 0) - base > MARKERS for s in later):
            return float("inf")  # work came and was never taken
    return longest


def survivor_gap(samples: Sequence[Sample], kill: Kill, end: float) -> tuple[float, str]:
    """The longest time within (kill, end] that a member other than the killed one had
    work and committed nothing, and whose it was."""
    longest, who = 0.0, ""
    window = [i for i, s in enumerate(samples) if kill.at < s.at <= end]
    survivors = {m for i in window for m in samples[i].owners.values() if m != kill.instance}
    for member in sorted(survivors):
        since = kill.at
        for i in window:
            now = samples[i]
            committed = _committed(member, samples[i - 1] if i else None, now)
            if not committed and not _has_work(member, now):
                since = now.at  # nothing to do: no gap
                continue
            # a commit closes the gap at the sample that shows it: an upper bound
            if now.at - since > longest:
                longest, who = now.at - since, member
            if committed:
                since = now.at
    return longest, who


def _committed(member: str, prev: Sample | None, now: Sample) -> bool:
    if prev is None:
        return False
    return any(
        now.committed.get(tp, -1) > prev.committed.get(tp, -1)
        for tp, who in now.owners.items()
        if who == member
    )


def _has_work(member: str, now: Sample) -> bool:
    return any(
        now.ends.get(tp, 0) - max(now.committed.get(tp, 0), 0) > MARKERS
        for tp, who in now.owners.items()
        if who == member
    )


def owners_of(description: Any, followers: Sequence[str] = ()) -> dict[TP, str] | None:
    """Partition -> instance id from a ConsumerGroupDescription; None unless the group
    is Stable (mid-rebalance, assignments show empty). The group assigns only the
    driving topic: partition p of each of `followers` is owned with its p."""
    if description.state != ConsumerGroupState.STABLE:
        return None
    out: dict[TP, str] = {}
    for member in description.members or []:
        # the engine's client.id is eos-<instance id>: the key without static membership
        who = member.group_instance_id or member.client_id.removeprefix("eos-")
        for tp in member.assignment.topic_partitions or []:
            out[(tp.topic, tp.partition)] = who
            out.update({(topic, tp.partition): who for topic in followers})
    return out


def instance_of(pid: int, group_dir: Path, host: str) -> str | None:
    """The instance id that the `eos run` process `pid` holds: the lock file it holds
    names its pid; instance-<n>.lock is <host>-<n>, named-<quoted id>.lock the id."""
    for path in sorted(group_dir.glob("*.lock")):
        try:
            holder = path.read_text(errors="replace").strip()
        except OSError:
            continue
        if holder != str(pid):
            continue
        if path.stem.startswith("instance-"):
            return f"{host}-{path.stem.removeprefix('instance-')}"
        if path.stem.startswith("named-"):
            return unquote(path.stem.removeprefix("named-"))
    return None


class Sampler:
    """Takes `Sample`s in a thread of its own from `with` to its end; a sample that
    fails (a settling cluster) is skipped, owners that cannot be asked stay as they were.

    `steady` is held by whoever takes a broker down (the faults, from a bounce until its
    lag is back), and no describe is sent meanwhile: librdkafka aborts the process when a
    coordinator request of an admin client meets a dropped connection
    (confluentinc/librdkafka#4605), and this process is the one that keeps the score."""

    def __init__(
        self, engine: EngineSettings, ledger: LedgerSettings, timeout: float = 5.0
    ) -> None:
        self._engine, self._timeout = engine, timeout
        self._topics = [ledger.payments_topic, ledger.credits_topic]
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)
        self.steady = threading.Lock()
        self.skipped = 0

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        engine = self._engine
        consumer = Consumer(
            {
                **connection_config(consumer_config(engine)),
                "group.id": engine.group_id,
                "isolation.level": "read_uncommitted",  # no require_stable: see above
                "enable.auto.commit": False,
            }
        )
        owners = _Owners(engine, self.steady, self._timeout, self._topics[1:])
        try:
            with Offsets(consumer_config(engine), self._timeout) as offsets:
                parts = offsets.partitions(self._topics)
                while not self._stop.wait(SAMPLE_EVERY):
                    now = owners.current()
                    try:
                        ends = offsets.last_stable(parts)
                        committed = committed_positions(consumer, parts, self._timeout)
                    except Exception:  # a bouncing broker: the next sample will do
                        self.skipped += 1
                        continue
                    with self._lock:
                        self._samples.append(Sample(time.monotonic(), committed, ends, now))
        finally:
            consumer.close()


class _Owners:
    """The group's partition owners, asked at most every `OWNERS_EVERY` seconds and only
    while `steady` is free; a new admin client after a fault or a failure, as librdkafka's
    admin client can stay stuck on a broker that went away."""

    def __init__(
        self,
        engine: EngineSettings,
        steady: threading.Lock,
        timeout: float,
        followers: Sequence[str] = (),
    ) -> None:
        self._engine, self._steady, self._timeout = engine, steady, timeout
        self._followers = followers
        self._admin = make_admin(engine)
        self._fresh = True
        self._owners: dict[TP, str] = {}
        self._next = 0.0

    def current(self) -> dict[TP, str]:
        if time.monotonic() < self._next:
            return self._owners
        if not self._steady.acquire(blocking=False):
            self._fresh = False
            return self._owners
        try:
            if not self._fresh:
                self._admin, self._fresh = make_admin(self._engine), True
            group = self._engine.group_id
            found = self._admin.describe_consumer_groups([group], request_timeout=self._timeout)
            described = found[group].result(timeout=self._timeout)
            self._owners = owners_of(described, self._followers) or self._owners
            self._next = time.monotonic() + OWNERS_EVERY
        except Exception:  # a settling coordinator: ask again next sample
            self._fresh = False
        finally:
            self._steady.release()
        return self._owners
