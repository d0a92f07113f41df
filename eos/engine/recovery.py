"""Replacing a lost producer without losing or repeating a batch.

After `Committer.recover()` the new producer's init_transactions has settled the old
one's last transaction: committed or aborted, never open. The group's committed offsets
then say which it was. The batch in hand is never retried as it is: every owned
partition is rewound to its committed offset, so what was not committed is read again
and what was is not, and the batch's staged state is applied only if it committed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from eos.config import EngineSettings
from eos.engine.batch import BatchResult
from eos.engine.records import next_offsets
from eos.engine.state import StateStore
from eos.engine.stats import Stats
from eos.engine.transaction import Committer, ProducerLost
from eos.kafka.errors import ErrorClass, TransactionError
from eos.kafka.offsets import TP, committed_positions, rewind

__all__ = ["FenceWatch", "MemberIds", "Recovered", "Recovery", "committed_through"]

log = logging.getLogger("eos.processor")

# How long a fenced instance looks for a newer twin in its group before it decides the
# fence was its own producer's (an epoch bump after a broker bounce) and recovers.
TWIN_WAIT_S = 10.0
# Past its session timeout, how long an earlier run of ours may take to leave the group.
PREDECESSOR_MARGIN_S = 5.0


class Recovered(Exception):
    """The producer was replaced and the owned partitions rewound: drop the batch."""


class FenceWatch:
    """Fences close together mean another live process has our transactional.id (one
    fence after a broker bounce is librdkafka's epoch bump, and recovers)."""

    def __init__(
        self, limit: int = 3, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def fenced(self) -> bool:
        """Note a fence; True when `limit` of them fell within `window_s`."""
        now = self._clock()
        self._times.append(now)
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()
        return len(self._times) >= self._limit


Callback = Callable[[Consumer, list[TopicPartition]], None]


class MemberIds:
    """Every group member id a consumer has had, noted at each rebalance. After its
    session times out (a broker bounce) it rejoins under a new id while the group still
    lists the old one under the same client.id: that member is no twin of ours."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._seen: set[str] = set()

    def all(self) -> set[str]:
        self._note()
        return set(self._seen)

    def noting(self, callback: Callback) -> Callback:
        """`callback`, noting the member id first (a getter: safe inside a callback)."""

        def noted(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self._note()
            callback(consumer, partitions)

        return noted

    def _note(self) -> None:
        member = self._consumer.memberid()
        if member:
            self._seen.add(member)


def committed_through(batch: Sequence[TopicPartition], committed: Mapping[TP, int]) -> bool:
    """Whether the group's committed offsets include `batch` (its next offsets): the
    transaction in doubt committed. Partitions no longer owned are left out of
    `committed` and say nothing."""
    known = [tp for tp in batch if (tp.topic, tp.partition) in committed]
    return bool(known) and all(committed[(tp.topic, tp.partition)] >= tp.offset for tp in known)


class Recovery:
    def __init__(
        self,
        committer: Committer,
        consumer: Consumer,
        stores: Sequence[StateStore],
        stats: Stats,
        settings: EngineSettings,
        back_off: Callable[[int], None],
        twin: Callable[[], str | None] = lambda: None,
        after_crash: bool = False,
    ) -> None:
        """`twin` describes another member of the group with our instance id, if there
        is one: then a fence means it is a newer owner, not an epoch bump. `after_crash`:
        the run of this instance before us on this host ended without leaving the group;
        its member is waited out of the group before we join (up to its session timeout;
        not with static membership, where the broker hands us its place at once)."""
        self._committer = committer
        self._consumer = consumer
        self._stores = stores
        self._stats = stats
        self._earliest = settings.auto_offset_reset == "earliest"
        self._back_off = back_off
        self._transactional_id = settings.transactional_id
        self._fences = FenceWatch()
        self._twin = twin
        self.twin_wait_s = TWIN_WAIT_S
        eager = not settings.incremental_rebalance
        self._predecessor_wait_s = (
            settings.session_timeout_ms / 1000 + PREDECESSOR_MARGIN_S
            if after_crash and eager and not settings.static_membership
            else 0.0
        )

    def start(self) -> None:
        """The first producer (one that cannot start is replaced until one can), then
        an earlier run of this instance waited out of the group."""
        attempt = 0
        while True:
            try:
                self._committer.init() if attempt == 0 else self._committer.recover()
                break
            except ProducerLost as lost:
                attempt += 1
                log.warning("starting the producer: %s; trying again", lost)
                self._back_off(attempt)
        self._await_predecessor()

    def _await_predecessor(self) -> None:
        """Join the group only once an earlier run of this instance has left it.

        A run that was SIGKILLed stays a member until its session times out. A new
        member joining before then starts a rebalance that cannot finish until it does,
        and under an eager assignor every member has given up its partitions meanwhile:
        the whole group stops. Joining just after, the others see one short rebalance.
        Under an incremental one there is no wait: the others keep their partitions and
        go on committing while the rebalance is pending (the coordinator refuses commits
        only while it completes), and joining at once makes it a single rebalance that
        hands the dead run's partitions straight to us.
        Only after a crash on this host: a live twin elsewhere (the same instance id on
        two hosts) must see us join, or it takes its fence for an epoch bump and goes
        on. Bounded by the session timeout and a margin."""
        if self._predecessor_wait_s <= 0:
            return
        deadline = time.monotonic() + self._predecessor_wait_s
        waiting = None
        while time.monotonic() < deadline:
            try:
                earlier = self._twin()
            except Exception as exc:  # the group cannot be described now: just join
                log.warning("could not look for an earlier run in the group: %s", exc)
                return
            if earlier is None:
                if waiting:
                    log.info("the earlier run of this instance left the group; joining")
                return
            if waiting is None:
                waiting = earlier
                log.info(
                    "an earlier run of this instance (%s) is still in the group; waiting "
                    "up to %.0f s for its session to time out before joining, so the other "
                    "members go on processing meanwhile",
                    earlier,
                    self._predecessor_wait_s,
                )
            self._back_off(3)
        log.warning("the earlier run (%s) is still in the group; joining anyway", waiting)

    def recover(
        self, result: BatchResult | None, lost: ProducerLost, owned: Collection[TP]
    ) -> None:
        """Replace the producer, settle the batch in doubt, rewind; raises Recovered."""
        self._stats.recoveries += 1
        log.warning(
            "producer lost (%s); replacing it and resuming from the committed offsets", lost
        )
        attempt = 0
        while True:
            self._check_fence(lost)
            try:
                self._committer.recover()
                committed = committed_positions(self._consumer, owned)
                break
            except ProducerLost as again:
                lost = again
            except KafkaException as exc:  # the coordinator is still settling
                log.warning("recovery: %s; trying again", exc)
            attempt += 1
            self._back_off(attempt)
        done = result is not None and committed_through(next_offsets(result.records), committed)
        for store in self._stores:
            if done:
                store.commit_batch()
            else:
                store.begin_batch()
        if done and result is not None:
            reasons = [f.reason for f in result.failures]
            self._stats.committed(len(result.records), len(result.outputs), reasons)
        rewind(self._consumer, committed, self._earliest)
        log.info(
            "recovered: the batch in doubt %s; partitions rewound to their committed offsets",
            "had committed" if done else "had not committed and is read again",
        )
        raise Recovered

    def _check_fence(self, lost: ProducerLost) -> None:
        """A fence is recovered from (after a broker bounce librdkafka's epoch bump fences
        its own producer) unless a newer owner of our transactional.id is alive: another
        member of the group with our instance id, or fences again and again."""
        if not lost.fenced:
            return
        twin = self._twin_or_none()
        if twin is None and not self._fences.fenced():
            return
        who = twin or "another live process"
        raise TransactionError(
            f"fenced: {who} uses transactional.id {self._transactional_id} and is newer; "
            "this instance is the zombie and stops (safe: its work is redone). Give each "
            "process its own EOS_INSTANCE_ID",
            lost.error or KafkaError(KafkaError._FENCED),
            ErrorClass.FATAL,
        )

    def _twin_or_none(self) -> str | None:
        """Look for a twin for `twin_wait_s`: a newer process fences us in its
        init_transactions, moments before it joins the group."""
        deadline = time.monotonic() + self.twin_wait_s
        while True:
            try:
                twin = self._twin()
            except Exception as exc:  # the group cannot be described now: the watch decides
                log.warning("could not look for a twin instance: %s", exc)
                twin = None
            if twin is not None or time.monotonic() > deadline:
                return twin
            time.sleep(1.0)
