"""What a kill costs the group, from a timeline of samples: the survivors' longest commit
gap, the killed processor's takeover time, and where the inputs come from."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException, Node, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ConsumerGroupDescription,
    MemberAssignment,
    MemberDescription,
)

from eos.config import EngineSettings
from eos.kafka.offsets import TP
from eos.stack.stack import Stack, StackSpec
from eos.tools import chaos_faults, chaos_gaps
from eos.tools.chaos import ChaosOptions, _Outcome, _table
from eos.tools.chaos_faults import Faults, FaultTiming, Pool, Timeline
from eos.tools.chaos_gaps import (
    GAP_BAR,
    TAKEOVER_BAR,
    WINDOW,
    Kill,
    KillCost,
    Sample,
    instance_of,
    measure,
    owners_of,
    survivor_gap,
    takeover,
)

A, B, C = ("pay", 0), ("pay", 1), ("credits", 0)
OWNERS = {A: "h-0", B: "h-1", C: "h-1"}  # h-0 is killed, h-1 survives
KILL = Kill(at=10.0, name="p1", instance="h-0")


def _run(moves: dict[TP, dict[float, int]], until: float = 30.0, ahead: int = 100) -> list[Sample]:
    """Samples every 0.2 s from 9.0 to `until`: each partition's committed offset is the
    last value `moves` gives it at or before the sample; its end stays `ahead` records
    past it (work waiting) unless `ahead` is 0."""
    out = []
    steps = round((until - 9.0) / 0.2)
    for n in range(steps + 1):
        at = round(9.0 + n * 0.2, 3)
        committed = {
            tp: max((v for t, v in moves.get(tp, {}).items() if t <= at), default=0)
            for tp in OWNERS
        }
        ends = {tp: offset + ahead for tp, offset in committed.items()}
        out.append(Sample(at, committed, ends, OWNERS))
    return out


def _every(period: float, start: float = 9.0, until: float = 30.0) -> dict[float, int]:
    """A partition committing every `period` seconds, one more each time."""
    steps = round((until - start) / period)
    return {round(start + n * period, 3): n + 1 for n in range(steps + 1)}


def test_a_survivor_committing_all_along_shows_about_one_sampling_interval() -> None:
    samples = _run({A: _every(0.2, until=10.0) | {14.0: 999}, B: _every(0.2)})
    gap, who = survivor_gap(samples, KILL, end=20.0)
    assert gap == pytest.approx(0.2)
    assert who == "h-1"


def test_a_survivor_that_stalls_with_work_waiting_has_the_stall_as_its_gap() -> None:
    b = {t: v for t, v in _every(0.2).items() if not 11.0 < t < 14.4}  # stalled 11.0-14.4
    gap, who = survivor_gap(_run({B: b}), KILL, end=20.0)
    assert gap == pytest.approx(3.4)
    assert who == "h-1"


def test_a_survivor_with_nothing_waiting_has_no_gap_however_long_it_commits_nothing() -> None:
    gap, who = survivor_gap(_run({B: {9.0: 5}}, ahead=3), KILL, end=20.0)  # markers only
    assert (gap, who) == (0.0, "")


def test_any_partition_of_a_survivor_moving_counts_as_a_commit() -> None:
    gap, _ = survivor_gap(_run({B: _every(0.2), C: {9.0: 1}}), KILL, end=20.0)
    assert gap == pytest.approx(0.2)  # C stuck with work, but B moves


def test_the_killed_member_is_no_survivor_and_nothing_after_the_window_counts() -> None:
    b = {t: v for t, v in _every(0.2).items() if not 21.0 < t < 25.0}  # stalls after the end
    gap, who = survivor_gap(_run({A: {9.0: 1}, B: b}), KILL, end=20.0)
    assert gap == pytest.approx(0.2)
    assert who == "h-1"


def test_a_gap_starts_no_earlier_than_the_kill() -> None:
    b = {9.0: 1} | {t: v + 1 for t, v in _every(0.2, start=12.0).items()}  # none 9.0-12.0
    gap, _ = survivor_gap(_run({B: b}), KILL, end=20.0)
    assert gap == pytest.approx(2.0)  # from the kill at 10.0, not from 9.0


def test_takeover_is_when_the_last_of_the_killed_partitions_moves_again() -> None:
    samples = _run({A: {9.0: 10, 14.0: 11}, B: _every(0.2)})
    owners = {A: "h-0", B: "h-0", C: "h-1"}
    samples = [Sample(s.at, s.committed, s.ends, owners) for s in samples]
    moved_b_late = [
        Sample(s.at, {**s.committed, B: 1 if s.at < 17.0 else 500}, s.ends, owners) for s in samples
    ]
    assert takeover(moved_b_late, KILL) == pytest.approx(7.0)  # A at 14.0, B at 17.0


def test_a_commit_landing_just_after_the_kill_is_no_takeover() -> None:
    samples = _run({A: {9.0: 10, 10.2: 11, 13.0: 12}})
    assert takeover(samples, KILL) == pytest.approx(3.0)


def test_a_killed_partition_with_work_that_never_moves_again_is_never_taken_over() -> None:
    assert takeover(_run({A: {9.0: 10}}), KILL) == float("inf")


def test_a_killed_partition_without_new_input_does_not_count() -> None:
    assert takeover(_run({A: {9.0: 10}}, ahead=2), KILL) == 0.0


def test_takeover_is_unknown_without_the_killed_instance_or_what_it_owned() -> None:
    samples = _run({A: {9.0: 10, 13.0: 11}})
    assert takeover(samples, Kill(10.0, "p1", None)) == float("inf")
    assert takeover(samples, Kill(10.0, "p1", "h-9")) == float("inf")
    assert takeover(samples[10:], KILL) == float("inf")  # no sample before the kill


def test_measure_watches_survivors_until_the_takeover_or_the_window() -> None:
    b = {t: v for t, v in _every(0.2, until=60.0).items() if not 16.0 < t < 19.0}
    samples = _run({A: {9.0: 1, 15.0: 2}, B: b}, until=60.0)
    [cost] = measure(samples, [KILL])
    assert cost.takeover == pytest.approx(5.0)
    assert cost.gap == pytest.approx(0.2)  # B's stall at 16-19 is after the takeover
    [never] = measure(_run({A: {9.0: 1}, B: b}, until=60.0), [KILL])
    assert never.takeover == float("inf")
    assert never.gap == pytest.approx(3.0)  # inside the 30 s window
    assert WINDOW == 30.0


def _member(client: str, instance: str | None, parts: list[TP]) -> MemberDescription:
    tps = [TopicPartition(t, p) for t, p in parts]
    return MemberDescription(f"m-{client}", client, "/127.0.0.1", MemberAssignment(tps), instance)


def _group(state: ConsumerGroupState, members: list[MemberDescription]) -> object:
    return ConsumerGroupDescription(
        "g", False, members, "cooperative-sticky", state, Node(1, "b", 1)
    )


def test_owners_come_from_a_stable_group_by_instance_id() -> None:
    members = [_member("eos-h-0", "h-0", [A]), _member("eos-h-1", None, [B, C])]
    assert owners_of(_group(ConsumerGroupState.STABLE, members)) == {
        A: "h-0",
        B: "h-1",
        C: "h-1",
    }
    assert owners_of(_group(ConsumerGroupState.COMPLETING_REBALANCING, members)) is None


def test_the_instance_is_found_by_the_pid_in_its_lock_file(tmp_path: Path) -> None:
    (tmp_path / "instance-0.lock").write_text("111\n")
    (tmp_path / "instance-1.lock").write_text("222\n")
    (tmp_path / "named-p%2F9.lock").write_text("333\n")
    (tmp_path / "instance-2.lock").write_text("")
    assert instance_of(222, tmp_path, "host") == "host-1"
    assert instance_of(333, tmp_path, "host") == "p/9"
    assert instance_of(444, tmp_path, "host") is None


@pytest.mark.parametrize(
    ("gap", "back", "code"),
    [(0.3, 6.0, 0), (GAP_BAR + 0.1, 6.0, 1), (0.3, TAKEOVER_BAR + 0.1, 1), (0.3, float("inf"), 1)],
)
def test_the_run_fails_when_a_kill_is_over_either_bar(
    gap: float, back: float, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _Outcome(verified=True, recoveries=[5.0], costs=[KillCost("p1", back, gap, "h-1")])
    assert _table(ChaosOptions(), out) == code
    table = capsys.readouterr().out
    assert "survivor commit gap (max)" in table and "kill takeover (max)" in table
    assert f"{gap:.1f}s (h-1)" in table


class _FakeAdmin:
    """Answers describe_consumer_groups with `group`, or raises when that is None."""

    made = 0

    def __init__(self, group: object) -> None:
        self.group, self.calls = group, 0
        _FakeAdmin.made += 1

    def describe_consumer_groups(self, groups: list[str], **_: object) -> dict[str, Future[object]]:
        self.calls += 1
        if self.group is None:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        done: Future[object] = Future()
        done.set_result(self.group)
        return {groups[0]: done}


def test_owners_are_not_asked_while_a_broker_is_down_and_asked_anew_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stable = _group(ConsumerGroupState.STABLE, [_member("eos-h-0", "h-0", [A])])
    admins: list[_FakeAdmin] = []

    def make(_: object) -> _FakeAdmin:
        admins.append(_FakeAdmin(stable))
        return admins[-1]

    monkeypatch.setattr(chaos_gaps, "make_admin", make)
    steady = threading.Lock()
    owners = chaos_gaps._Owners(EngineSettings(group_id="g"), steady, timeout=1.0)
    with steady:  # a bounce: no describe may be in flight
        assert owners.current() == {}
    assert admins[0].calls == 0
    assert owners.current() == {A: "h-0"}
    assert len(admins) == 2 and admins[1].calls == 1  # a new client after the bounce
    assert owners.current() == {A: "h-0"}  # within OWNERS_EVERY: not asked again
    assert admins[1].calls == 1


def test_a_failed_describe_keeps_the_owners_and_brings_a_new_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admins = [_FakeAdmin(None), _FakeAdmin(None)]
    monkeypatch.setattr(chaos_gaps, "make_admin", lambda _: admins.pop(0))
    owners = chaos_gaps._Owners(EngineSettings(group_id="g"), threading.Lock(), timeout=1.0)
    assert owners.current() == {}
    assert owners.current() == {}
    assert admins == []  # the second ask had a client of its own


def test_faults_hold_the_steady_lock_through_a_bounce_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(chaos_faults, "GAP", 0.0)
    steady = threading.Lock()
    spec = StackSpec(brokers=3, kafka_port=1, registry_port=2)
    faults = Faults(Pool(tmp_path, {}), cast(Stack, None), spec, FaultTiming(1, 1, 0), 1, steady)
    held: list[tuple[str, bool]] = []
    monkeypatch.setattr(faults, "_one", lambda kind: held.append((kind, steady.locked())))
    timeline = Timeline()
    monkeypatch.setattr(timeline, "wait_back", lambda *_: True)
    faults.run([(0.0, "kill"), (0.0, "bounce"), (0.0, "pause")], timeline, threading.Event())
    assert held == [("kill", False), ("bounce", True), ("pause", False)]
    assert not steady.locked()


def test_without_kill_bars_the_figures_are_reported_but_do_not_fail_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    slow = KillCost("p1", TAKEOVER_BAR + 5, GAP_BAR + 1, "h-1")
    out = _Outcome(verified=True, recoveries=[5.0], costs=[slow])
    assert _table(ChaosOptions(kill_bars=False), out) == 0
    assert "reported only" in capsys.readouterr().out
    assert _table(ChaosOptions(kill_bars=False), replace(out, verified=False)) == 1


def test_without_kill_bars_a_slow_lag_recovery_is_reported_only() -> None:
    out = _Outcome(verified=True, recoveries=[47.7], costs=[])
    assert _table(ChaosOptions(kill_bars=False), out) == 0
    assert _table(ChaosOptions(), out) == 1


def test_a_fault_counts_as_recovered_only_by_a_lag_sample_well_after_it_ended(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(chaos_faults, "GAP", 0.0)
    spec = StackSpec(brokers=3, kafka_port=1, registry_port=2)
    steady = threading.Lock()
    faults = Faults(Pool(tmp_path, {}), cast(Stack, None), spec, FaultTiming(1, 1, 0), 1, steady)
    ended: list[float] = []
    monkeypatch.setattr(faults, "_one", lambda _kind: ended.append(time.monotonic()))
    asked: list[float] = []
    timeline = Timeline()

    def wait_back(_level: int, after: float, *_: object) -> bool:
        asked.append(after)
        return True

    monkeypatch.setattr(timeline, "wait_back", wait_back)
    faults.run([(0.0, "bounce")], timeline, threading.Event())
    assert asked[0] - ended[0] >= chaos_faults.SETTLED_AFTER


def test_a_followers_partition_is_owned_with_the_driving_topics() -> None:
    # The group assigns only payments; credits' p goes with payments' p.
    members = [_member("eos-h-0", "h-0", [("payments", 0)]), _member("eos-h-1", None, [])]
    owners = owners_of(_group(ConsumerGroupState.STABLE, members), ["credits"])
    assert owners == {("payments", 0): "h-0", ("credits", 0): "h-0"}


def test_the_longest_sample_interval_is_reported_for_each_kill_window() -> None:
    samples = _run({A: {1.0: 1}, B: {1.0: 1}}, until=20.0)
    late = [s for s in samples if not 10.0 < s.at < 12.5]  # the sampler stalled 2.5 s
    [cost] = measure(late, [KILL])
    assert cost.blind == pytest.approx(2.6, abs=0.2)
