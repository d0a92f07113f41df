"""Which store partitions this member may process: co-partitioning enforced locally.

A stateful app processes partition p only when this member owns partition p of every
one of its input topics, and its stores have p restored. Each topic-partition has one
owner in the group, so two members can never both process store partition p, whatever
their subscriptions and the assignor: a member that owns only some of the inputs' p
(another member, say an older version with other inputs, has the rest) keeps them
paused and says so. Members of one version of an app never split them: each subscribes
to the first input (the driving topic) and assigns itself the other inputs' p with it
(`eos.engine.rebalance`). The guard is for members of other versions. Its limit: the
group's single owner of the driving topic's p is what makes p one member's, so every
version of a stateful app must read that topic, first.

Plain data: the rebalance callbacks and the run loop tell it what happened.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from eos.errors import ConfigurationError

__all__ = ["PartitionsChanged", "StorePartitions", "check_counts"]

TP = tuple[str, int]


class PartitionsChanged(ConfigurationError):
    """An input or changelog topic's partition count is not what the processor started
    with: keys would now map to partitions whose state lives elsewhere."""


def check_counts(started: Mapping[str, int], now: Mapping[str, int]) -> None:
    """Stop (PartitionsChanged) when a topic's partition count moved since the start."""
    changed = {t: (n, now[t]) for t, n in started.items() if t in now and now[t] != n}
    if changed:
        what = ", ".join(f"{t} from {a} to {b}" for t, (a, b) in sorted(changed.items()))
        raise PartitionsChanged(
            f"partition count changed ({what}) while the processor ran; its state is kept "
            "per partition and keys now hash to other partitions, so it stops rather than "
            "post against the wrong state. Give every input and changelog topic the same "
            "count and rebuild the state (README: changing partition counts)"
        )


class StorePartitions:
    """Partition numbers: complete (every input's p owned here), restoring, active."""

    def __init__(self, inputs: Collection[str], stateful: bool) -> None:
        self._inputs = frozenset(inputs)
        self.stateful = stateful
        self.restoring: set[int] = set()
        self.active: set[int] = set()
        self._held: dict[TP, int] = {}

    def complete(self, owned: Collection[TP]) -> set[int]:
        numbers = {p for _t, p in owned}
        return {p for p in numbers if all((t, p) in owned for t in self._inputs)}

    def assigned(self, owned: Collection[TP]) -> tuple[set[int], set[int]]:
        """After an assignment (`owned`: all now owned): the store partitions to restore,
        and the partition numbers held back because only some inputs have them here."""
        complete = self.complete(owned)
        new = complete - self.active - self.restoring
        self.restoring |= new
        split = {p for _t, p in owned} - complete
        return new, split

    def released(self, owned: Collection[TP]) -> set[int]:
        """After a revocation (`owned`: what is still owned): the store partitions this
        member no longer has whole."""
        complete = self.complete(owned)
        gone = (self.active | self.restoring) - complete
        self.active -= gone
        self.restoring -= gone
        self._held = {tp: o for tp, o in self._held.items() if tp in owned}
        return gone

    def ready(self, partitions: Iterable[int]) -> set[int]:
        """Store partitions restored: the ones still wanted become active."""
        now = set(partitions) & self.restoring
        self.restoring -= now
        self.active |= now
        return now

    def may_process(self, tp: TP) -> bool:
        return not self.stateful or tp[1] in self.active

    def hold(self, tp: TP, offset: int) -> bool:
        """A record of a partition not to be processed yet: it is dropped, and the
        partition is read again from its first such offset. True for the first."""
        if tp in self._held:
            return False
        self._held[tp] = offset
        return True

    def held_among(self, tps: Collection[TP]) -> list[TP]:
        """The partitions of `tps` held (so paused) here, in order."""
        return sorted(tp for tp in self._held if tp in tps)

    def take_held(self, partitions: Collection[int]) -> dict[TP, int]:
        """Where to read again from when `partitions` resume."""
        out = {tp: o for tp, o in self._held.items() if tp[1] in partitions}
        for tp in out:
            del self._held[tp]
        return out
