"""The app's topics for an integration test: unique names, contracts registered."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from orders.app import contract

from eos.testing.topics import TopicSet


@pytest.fixture
def order_topics(eos_topics: Callable[..., TopicSet]) -> TopicSet:
    contracts = {"orders": contract("order"), "priced": contract("priced_order")}
    return eos_topics({**contracts, "totals": None, "dlq": None}, partitions=3)
