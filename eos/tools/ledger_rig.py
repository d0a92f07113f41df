"""Private ledgers for the benches: topics under a unique prefix, `eos run ledger`
processes spawned on them, payments preloaded, progress read from the group's committed
offsets, and everything deleted afterwards.

Only the process boundary and Kafka: the benches measure whatever runs behind `eos run
ledger`, as a user would run it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from eos.config import EngineSettings
from eos.errors import RunFailed
from eos.kafka.admin import create_topics, metadata
from eos.kafka.clients import consumer_config, make_admin, make_registry
from eos.kafka.lag import without_records
from eos.kafka.offsets import TP, Offsets, total
from eos.ledger.generator import LoadSpec, produce_payments
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import choose_replication, subjects, topic_specs
from eos.progress import Progress
from eos.serde import compat
from eos.serde.registry import delete_subjects
from eos.tools.bench_state_procs import Peak, Processor
from eos.tools.bench_state_report import caught_up, only_markers_maybe

__all__ = ["LedgerRig", "TopicSet"]


@dataclass(frozen=True)
class TopicSet:
    """One private ledger: its topics, a processor's settings and its state dir."""

    tag: str
    ledger: LedgerSettings
    engine: EngineSettings
    env: dict[str, str]
    reply_topic: str


class LedgerRig:
    """Private ledgers on one cluster, and the processors run on them."""

    def __init__(
        self,
        bootstrap: str,
        registry_url: str,
        run_dir: Path,
        partitions: int,
        accounts: int,
        static_membership: bool = True,
    ) -> None:
        self.bootstrap, self.registry_url, self.run_dir = bootstrap, registry_url, run_dir
        self.partitions, self.accounts = partitions, accounts
        self.static_membership = static_membership
        self.peak = Peak()
        self.processors: list[Processor] = []
        self.created: list[TopicSet] = []
        reader = EngineSettings(bootstrap_servers=bootstrap, schema_registry_url=registry_url)
        self.reader = consumer_config(reader)
        self.offsets = Offsets(self.reader)

    def topic_set(self, tag: str) -> TopicSet:
        ledger = LedgerSettings.with_prefix(tag)
        env = {
            **LedgerSettings.private_env(tag, self.bootstrap, self.registry_url),
            "EOS_INSTANCE_ID": f"{tag}-p",
            "EOS_STATE_DIR": str(self.run_dir / tag / "state"),
            "EOS_STATIC_MEMBERSHIP": str(self.static_membership).lower(),
        }
        engine = EngineSettings(
            bootstrap_servers=self.bootstrap,
            schema_registry_url=self.registry_url,
            group_id=env["EOS_GROUP_ID"],
            dlq_topic=env["EOS_DLQ_TOPIC"],
            transactional_id_prefix=tag,
            instance_id=f"{tag}-bench",
        )
        reply_topic = f"{ledger.reply_topic_prefix}{tag}"
        return TopicSet(tag, ledger, engine, {**os.environ, **env}, reply_topic)

    def create(self, ts: TopicSet) -> None:
        """What `eos ledger setup` does, for this set, plus a reply topic."""
        admin = make_admin(ts.engine)
        replication = choose_replication(len(metadata(admin).brokers))
        specs = topic_specs(ts.engine, ts.ledger, self.partitions, replication)
        specs.append(NewTopic(ts.reply_topic, 1, replication.factor))
        self.created.append(ts)  # from here on, whatever was created is deleted at the end
        create_topics(admin, specs)
        compat.register_subjects(make_registry(ts.engine), subjects(ts.ledger))

    def spawn(self, ts: TopicSet, phase: str, args: Sequence[str] = ()) -> Processor:
        name = f"{ts.tag}-{len(self.processors) + 1}-{phase}"
        proc = Processor(name, ts.env, self.run_dir / f"{name}.log", self.peak, args)
        self.processors.append(proc)
        return proc

    def load(self, ts: TopicSet, funding: str, count: int, seed: int) -> None:
        """Payments without duplicates or bad ones (`funding` as LoadSpec takes it)."""
        spec = LoadSpec(
            count=count,
            accounts=self.accounts,
            duplicates=0.0,
            invalid=0.0,
            garbage=0.0,
            seed=seed,
            funding=funding,
        )
        print(f"  {produce_payments(ts.engine, ts.ledger, spec).line()}", flush=True)

    def inputs(self, ts: TopicSet) -> tuple[list[TP], list[TP]]:
        """The processor's input partitions: payments, and credits (transactional)."""
        pay = self.offsets.partitions([ts.ledger.payments_topic])
        return pay, self.offsets.partitions([ts.ledger.credits_topic])

    def committed_total(self, ts: TopicSet) -> int:
        """The group's committed offsets on its inputs, summed."""
        pay, credits = self.inputs(ts)
        return total(self.offsets.committed(ts.engine.group_id, pay + credits))

    def drain(
        self,
        ts: TopicSet,
        proc: Processor,
        doing: str,
        before: int,
        expected: int | None,
        timeout: float,
    ) -> tuple[list[tuple[float, int]], float]:
        """Samples (time, payments and credit legs committed past `before`) until both
        topics are caught up, and when they were; progress against `expected` records."""
        pay, credits = self.inputs(ts)
        parts = pay + credits
        samples: list[tuple[float, int]] = []
        progress: Progress | None = None
        started = said = time.monotonic()
        committed: dict[TP, int] = {}
        written: dict[TP, int] = {}
        stable: dict[TP, int] = {}
        read_at = 0.0
        while time.monotonic() - started < timeout:
            proc.check(doing)
            committed = self.offsets.committed(ts.engine.group_id, parts)
            written = self.offsets.high_watermarks(parts)
            stable = self.offsets.last_stable(credits)
            now = time.monotonic()
            done = total(committed) - before
            samples.append((now, done))
            doubt = only_markers_maybe(committed, written, stable, credits)
            if doubt == {}:  # every partition caught up
                return samples, now
            if doubt and now - read_at >= 1.0:
                read_at = now
                if without_records(self.reader, doubt, written) >= set(doubt):
                    return samples, now
            if expected and done > 0:
                # From the first progress: a restore before it would skew rate and ETA.
                progress = progress or Progress(f"{doing} (payments + credit legs)", expected)
                progress.update(min(done, expected))
            elif now - said >= 5:
                print(f"  {doing}: {now - started:.0f}s, nothing processed yet", flush=True)
                said = now
            time.sleep(0.1)
        behind = ", ".join(
            f"{t}[{p}] committed {committed.get((t, p))} high {end} stable {stable.get((t, p))}"
            for (t, p), end in sorted(written.items())
            if not caught_up(committed, {(t, p): end}, stable, credits)
        )
        raise RunFailed(f"{doing}: not caught up after {timeout:.0f}s: {behind}")

    def wait_members(self, ts: TopicSet, proc: Processor, members: int, timeout: float) -> None:
        """Until the set's group is stable with `members` members, each holding partitions:
        a run timed after this does not pay for its workers joining one by one."""
        admin = make_admin(ts.engine)
        group = ts.engine.group_id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc.check("waiting for the group to settle")
            found = admin.describe_consumer_groups([group], request_timeout=10)[group]
            described = found.result(timeout=10)
            holding = [m for m in described.members or [] if m.assignment.topic_partitions]
            if described.state == ConsumerGroupState.STABLE and len(holding) == members:
                return
            time.sleep(0.2)
        raise RunFailed(f"group {group} did not settle with {members} member(s) in {timeout:.0f}s")

    def stop_all(self) -> None:
        for proc in self.processors:
            if proc.proc.poll() is None:
                proc.stop(signal.SIGKILL, 30)

    def discard(self, ts: TopicSet) -> None:
        """A set's topics, group, subjects and state dirs, gone (best effort)."""
        _delete(ts)
        shutil.rmtree(self.run_dir / ts.tag, ignore_errors=True)
        if ts in self.created:
            self.created.remove(ts)

    def close(self) -> None:
        """Stop every processor, delete every set still here."""
        self.stop_all()
        self.offsets.close()
        for ts in list(self.created):
            self.discard(ts)


def _delete(ts: TopicSet) -> None:
    """The set's topics, group and subjects: best effort, a failure is only reported."""
    admin = make_admin(ts.engine)
    try:
        names = [t for t in metadata(admin).topics if t.startswith(f"{ts.tag}.")]
        names += [ts.reply_topic]
        for name, future in admin.delete_topics(names, operation_timeout=30).items():
            try:
                future.result(60)
            except Exception as exc:  # already gone, or the cluster refused: say so
                print(f"  !! could not delete topic {name}: {exc}", flush=True)
        for future in admin.delete_consumer_groups([ts.engine.group_id]).values():
            future.exception(30)  # a static member may still hold it: leave it to expire
    except Exception as exc:
        print(f"  !! cleaning up {ts.tag}: {exc}", flush=True)
    # Never the outcome's record-name subject: other ledgers share it.
    own = [s for s in subjects(ts.ledger) if s.startswith(f"{ts.tag}.")]
    left = delete_subjects(make_registry(ts.engine), own)
    if left:
        print(f"  !! could not delete subjects {', '.join(left)}", flush=True)
