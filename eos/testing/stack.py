"""A local stack a test controls (`eos stack`: real KRaft brokers and the registry, no
Docker), to bounce a broker under a running app.

    with LocalStack.private(tmp_path, brokers=3) as stack:
        topics = make_topics(stack.cluster, {...}, replication=3)
        app = AppProcess("mypkg.app:build", app_env(stack.cluster, {...})).start()
        stack.bounce()  # SIGKILL a broker, start it again, wait until all answer

`LocalStack.running()` is the stack `eos stack up --brokers 3` started instead.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from eos.stack.cluster import KafkaCluster
from eos.stack.layout import StackLayout
from eos.stack.stack import Stack, StackSpec, kafka_answers

__all__ = ["LocalStack", "free_ports"]


class LocalStack:
    """One local stack's brokers, as a test bounces them."""

    def __init__(self, stack: Stack, rng: random.Random | None = None) -> None:
        self.stack = stack
        self.rng = rng or random.Random()

    @classmethod
    @contextlib.contextmanager
    def private(
        cls,
        run_dir: Path,
        brokers: int = 3,
        kafka_port: int | None = None,
        registry_port: int | None = None,
    ) -> Iterator[LocalStack]:
        """A stack of its own in `run_dir`, on free ports unless given (never the shared
        stack's 9092/8081); started, and stopped when the block ends. Each broker takes
        two ports (client, controller)."""
        spec = StackSpec(
            brokers=brokers,
            kafka_port=kafka_port or free_ports(29400, 2 * brokers),
            registry_port=registry_port or free_ports(28400, 1),
        )
        stack = Stack(StackLayout.create(None, run_dir), say=lambda _: None)
        stack.up(spec)
        try:
            yield cls(stack)
        finally:
            stack.down()

    @classmethod
    def running(cls, run_dir: Path | None = None) -> LocalStack:
        """The stack `eos stack up` started (from `run_dir`, default its own folder)."""
        stack = Stack(StackLayout.create(None, run_dir) if run_dir else None, say=lambda _: None)
        if not kafka_answers(stack.spec.bootstrap_servers, stack.spec.brokers):
            raise RuntimeError(
                f"no local stack answers on {stack.spec.bootstrap_servers}: "
                f"start one with `eos stack up --brokers 3`"
            )
        return cls(stack)

    @property
    def cluster(self) -> KafkaCluster:
        spec = self.stack.spec
        return KafkaCluster(spec.bootstrap_servers, str(spec.registry_url), "local stack")

    def brokers(self) -> list[str]:
        return [node.name for node in self.stack.spec.nodes()]

    def bounce(self, broker: str | None = None, down_for: float = 0.0) -> str:
        """SIGKILL a broker (`broker`, else one at random), leave it down `down_for`
        seconds, start it again and wait until every broker answers; its name. A crash,
        not a controlled shutdown: partitions it led move only when the cluster notices,
        as in production."""
        if len(self.brokers()) < 2:
            raise RuntimeError("a bounce needs a stack of 2 or more brokers (--brokers 3)")
        name = broker or self.rng.choice(self.brokers())
        if self.stack.kill(name) is None:
            raise RuntimeError(f"{name} is not running: nothing to bounce")
        time.sleep(down_for)
        self.stack.up(self.stack.spec)
        return name


_handed_out: set[int] = set()


def free_ports(start: int, count: int) -> int:
    """The first of `count` consecutive free ports at or after `start`, not handed out
    before in this process. Keep `start` below the ephemeral range (Linux: 32768), where
    an outgoing connection may take a port between this check and the bind."""
    for base in range(start, start + 3000, 10):
        block = range(base, base + count)
        if _handed_out.isdisjoint(block) and all(_bindable(p) for p in block):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no {count} free consecutive ports from {start}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
