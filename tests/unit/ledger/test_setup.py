"""`eos ledger setup`'s replication: as safe as the cluster allows, unless overridden."""

from __future__ import annotations

import pytest

from eos.errors import ConfigurationError
from eos.ledger.setup import Replication, choose_replication


def test_one_broker_gets_replication_1_and_min_insync_1() -> None:
    chosen = choose_replication(brokers=1)
    assert chosen == Replication(factor=1, min_insync=1, brokers=1, given=False)
    assert chosen.line() == "replication factor 1 (1 broker), min.insync.replicas 1"


def test_three_brokers_get_replication_3_and_min_insync_2() -> None:
    chosen = choose_replication(brokers=3)
    assert (chosen.factor, chosen.min_insync) == (3, 2)
    assert chosen.line() == "replication factor 3 (3 brokers), min.insync.replicas 2"


@pytest.mark.parametrize(("brokers", "factor", "min_insync"), [(2, 2, 1), (5, 3, 2)])
def test_the_factor_is_at_most_3(brokers: int, factor: int, min_insync: int) -> None:
    chosen = choose_replication(brokers)
    assert (chosen.factor, chosen.min_insync) == (factor, min_insync)


def test_a_given_factor_overrides_and_still_sets_min_insync() -> None:
    chosen = choose_replication(brokers=3, requested=1)
    assert (chosen.factor, chosen.min_insync) == (1, 1)
    assert "given" in chosen.line()


@pytest.mark.parametrize("requested", [0, 4])
def test_a_factor_the_cluster_cannot_hold_is_refused(requested: int) -> None:
    with pytest.raises(ConfigurationError, match="--replication"):
        choose_replication(brokers=3, requested=requested)
