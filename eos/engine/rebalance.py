"""What an assignment or a revocation does to this member's partitions and stores.

The callbacks do no slow work: an assignment records the partitions and checks the
partition counts. A record of an input partition whose store partition is not ready
(restoring, or not whole here: see `eos.engine.copartition`) is not processed: its
partition is paused at that record and read again from it once ready. The run loop
restores a slice at a time (`restore_step`) and resumes partitions as their stores are
ready. A
revocation closes the store partitions this member no longer has whole; their files
stay, so a later assignment only reads the changelog past their checkpoints.

Following (stateful apps with several inputs): the member subscribes to the first input
only, the driving topic, and partition p of every other input is assigned and revoked
together with the driving topic's p. One member then owns all of p under any assignor,
so the group can use the cooperative one: a rebalance moves only the partitions that
change hands, and the other members never stop processing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence

from confluent_kafka import Consumer, TopicPartition

from eos.engine.assignment import Assignment, names, tps
from eos.engine.copartition import StorePartitions, check_counts
from eos.engine.records import Consumed
from eos.engine.restore import Restorer
from eos.engine.state import StateStore
from eos.kafka.metadata import Client, PartitionCounts, current_counts

__all__ = ["Rebalance"]

log = logging.getLogger("eos.processor")


class Rebalance:
    def __init__(
        self,
        inputs: Collection[str],
        consumer: Consumer,
        stores: Sequence[StateStore] = (),
        restorer: Restorer | None = None,
        partition_counts: Mapping[str, int] | None = None,
        incremental: bool = True,
        follow: bool = False,
        metadata: Client | None = None,
    ) -> None:
        """`restorer` brings `stores` up to date after assignments; `partition_counts`:
        the inputs' and changelogs' counts at the start (a change stops the processor);
        `incremental`: the group's rebalance protocol is the cooperative one; `follow`:
        subscribe to the first input and assign the others with it (module doc);
        `metadata`: the client asked for partition counts. Not the consumer: a blocking
        call on it inside its own rebalance callback ends confluent-kafka's call state
        for the consume() that serves the callback, and the next callback that consume()
        serves (statistics, a log line) aborts the process."""
        self._inputs = inputs
        ordered = list(inputs)
        self._followers = ordered[1:] if follow else []
        # What the member subscribes to: the group assigns only these.
        self.subscription = ordered[:1] if follow else ordered
        self._consumer = consumer
        self._metadata = consumer if metadata is None else metadata  # an AdminClient is falsy
        self.assignment = self._assignment = Assignment(
            set(inputs), PartitionCounts(self._metadata)
        )
        self._stores = stores
        self._restorer = restorer or Restorer(stores, {}, stall_s=120.0)
        self._counts = dict(partition_counts or {})
        self._incremental = incremental
        self.parts = StorePartitions(inputs, bool(stores))
        self.rebalances = 0  # assignments this member received (an empty one counts)

    def _with_followers(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """`partitions` and, for each of the driving topic's, the followers' with its
        number."""
        extra = [
            TopicPartition(topic, p.partition)
            for p in partitions
            if p.topic == self.subscription[0]
            for topic in self._followers
        ]
        return [*partitions, *extra]

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        partitions = self._with_followers(partitions)
        self.rebalances += 1
        log.info("assigned %s", names(partitions))
        self._check_counts(partitions)
        (consumer.incremental_assign if self._incremental else consumer.assign)(partitions)
        self._assignment.assign(tps(partitions))
        if not self.parts.stateful:
            return
        owned = self._assignment.partitions
        restore, split = self.parts.assigned(owned)
        self._restorer.add(restore)
        # No pause here: one right after an assignment can race the client starting the
        # partition's fetcher, which is then dropped and never fetches (librdkafka #5591).
        # A partition not to be processed yet is paused at its first record instead
        # (may_process), once its fetcher is surely running.
        if split:
            log.warning(
                "holding partition(s) %s of %s paused: only some inputs' partitions with "
                "these numbers are assigned here, and a store partition is processed only "
                "where all are (is another member subscribed to other topics?)",
                sorted(split),
                ",".join(self._inputs),
            )

    def _check_counts(self, partitions: list[TopicPartition]) -> None:
        if not self._counts:
            return
        now = current_counts(self._metadata, self._counts)
        for p in partitions:  # also what the assignor saw, which may be newer
            if p.topic in self._counts:
                now[p.topic] = max(now.get(p.topic, 0), p.partition + 1)
        check_counts(self._counts, now)

    def released(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Forget revoked or lost `partitions` (and their followers); returns them all.
        Under the cooperative protocol they are unassigned here, since the client would
        unassign only the group's own; under the eager one the client unassigns all."""
        partitions = self._with_followers(partitions)
        # A partition paused here (at a record it could not process yet) keeps its pause
        # in the client across a revocation and a later assignment: lift it now.
        paused = self.parts.held_among(tps(partitions))
        if paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in paused])
        if self._incremental:
            owned = self._assignment.partitions
            self._consumer.incremental_unassign(
                [p for p in partitions if (p.topic, p.partition) in owned]
            )
        self._assignment.release(tps(partitions))
        gone = self.parts.released(self._assignment.partitions)
        self._restorer.remove(gone)
        for store in self._stores:
            store.close(gone)
        return partitions

    def may_process(self, rec: Consumed) -> bool:
        """Whether `rec` may be processed; if not, it is read again once it may, and its
        partition is paused until then (at its first such record)."""
        if self.parts.may_process(rec.tp):
            return True
        if self.parts.hold(rec.tp, rec.offset):
            self._consumer.pause([TopicPartition(*rec.tp)])
        return False

    @property
    def restoring(self) -> tuple[int, int]:
        """Store partitions not yet ready, and changelog offsets still to read for them."""
        return self._restorer.remaining()

    @property
    def restored(self) -> int:
        """Changelog records applied by restores, in all."""
        return self._restorer.restored

    @property
    def holding(self) -> bool:
        """Some store partition is still restoring: its inputs' records, held back until
        it is ready, are still to be processed, whatever ends their partitions reported."""
        return bool(self.parts.restoring)

    @property
    def only_restoring(self) -> bool:
        """Restoring, with nothing to process meanwhile: no need to wait for records."""
        return self._restorer.busy and not self.parts.active

    def restore_step(self) -> None:
        """Restore a slice, then resume the partitions whose stores are all ready."""
        if not self._restorer.busy:
            return
        busy = bool(self.parts.active)  # others are processing: short slices
        ready = self.parts.ready(self._restorer.step(0.2 if busy else 1.0))
        if not ready:
            return
        # Only the partitions paused here are resumed: a resume of one whose fetcher the
        # client is still starting can race that start (see `assigned`).
        held = self.parts.take_held(ready)
        for (topic, p), offset in held.items():
            self._consumer.seek(TopicPartition(topic, p, offset))
        self._assignment.rewound(held)
        if held:
            self._consumer.resume([TopicPartition(t, p) for t, p in sorted(held)])
        processing = sorted(tp for tp in self._assignment.partitions if tp[1] in ready)
        log.info("store partition(s) %s ready; processing %s", sorted(ready), processing)

    def describe_stores(self) -> str:
        """For the progress line: the local stores' size and compaction still pending."""
        if not self._stores:
            return ""
        totals = {"keys": 0, "bytes": 0, "pending": 0, "compacting": 0}
        for store in self._stores:
            for name, value in store.stats().items():
                totals[name] += value
        return (
            f"; stores: {totals['keys']} keys, {totals['bytes'] / 1e6:.0f} MB on disk, "
            f"{totals['pending'] / 1e6:.0f} MB to compact, "
            f"{totals['compacting']} compaction(s) running"
        )

    def close(self) -> None:
        self._restorer.close()
        for store in self._stores:
            store.close()
