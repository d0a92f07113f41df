"""Liveness and readiness, and the histograms as Prometheus reads them."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

from eos.engine.breaker import CircuitBreaker
from eos.engine.probe import ProcessorProbe
from eos.engine.processor import Processor
from eos.engine.stats import Buckets, OutageLog, Stats


def _processor(**rebalance: Any) -> Any:
    shape = {"rebalances": 1, "restoring": (0, 0), "restored": 0, "assignment": None}
    return SimpleNamespace(
        stats=Stats(),
        rebalance=SimpleNamespace(**{**shape, **rebalance}),
        registry_outage=OutageLog("schema registry unavailable"),
        breaker=CircuitBreaker(10, 0.5, 5, 5),
    )


def _probe(p: Any, stall_s: float = 60.0) -> ProcessorProbe:
    return ProcessorProbe(cast(Processor, p), stall_s)


def test_ready_once_assigned_and_restored() -> None:
    assert _probe(_processor()).ready() == (True, "ready")


def test_not_ready_before_the_first_assignment() -> None:
    ok, why = _probe(_processor(rebalances=0)).ready()
    assert not ok and "assignment" in why


def test_not_ready_while_a_store_restores() -> None:
    ok, why = _probe(_processor(restoring=(2, 1500))).ready()
    assert (ok, why) == (False, "restoring 2 store partition(s), 1500 offsets to go")


def test_not_ready_while_the_registry_is_down() -> None:
    p = _processor()
    p.registry_outage.down("connection refused")
    ok, why = _probe(p).ready()
    assert not ok and "registry" in why


def test_a_loop_that_has_not_come_round_is_not_live() -> None:
    p = _processor()
    p.stats.alive_at = time.monotonic() - 120
    assert not _probe(p, stall_s=60).live()[0]
    assert not _probe(p, stall_s=60).ready()[0]


def test_buckets_cumulate_up_to_inf() -> None:
    b = Buckets((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        b.observe(v)
    assert b.cumulative() == [("0.1", 2), ("1", 3), ("+Inf", 4)]
    assert b.total == 3.65


def test_a_commit_counts_each_dead_letter_under_its_reason() -> None:
    stats = Stats()
    stats.committed(10, 20, ["NOT_WIRE_FORMAT", "PERMANENT", "NOT_WIRE_FORMAT"])
    assert stats.dead_lettered == 3
    assert stats.dead_letter_reasons == {"NOT_WIRE_FORMAT": 2, "PERMANENT": 1}
