"""Unit tests through eos's test driver: no broker, the engine's own batch path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from orders.app import build

from eos.config import EngineSettings
from eos.testing.driver import TestDriver


def order(order_id: str, customer: str = "c-1", currency: str = "EUR") -> dict[str, object]:
    return {
        "order_id": order_id,
        "customer": customer,
        "sku": "sku-1",
        "quantity": 3,
        "unit_price_minor": 250,
        "currency": currency,
    }


@pytest.fixture
def driver() -> Iterator[TestDriver]:
    with TestDriver(build, EngineSettings(instance_id="unit"), partitions=3) as d:
        yield d


def test_orders_are_priced_and_each_customer_keeps_a_running_total(driver: TestDriver) -> None:
    driver.pipe("orders", order("o-1"), key="c-1")
    step = driver.pipe("orders", order("o-2"), key="c-1")
    [priced] = step.to("orders.priced")
    assert priced.value["total_minor"] == 750
    assert priced.value["customer_total_minor"] == 1500
    assert driver.state("customer-totals") == {(priced.partition, "c-1/EUR"): 1500}


def test_an_unknown_currency_is_dead_lettered_with_its_reason_and_origin(
    driver: TestDriver,
) -> None:
    step = driver.pipe("orders", order("o-9", currency="XXX"), key="c-1", headers={"trace": "t9"})
    assert step.to("orders.priced") == []
    [letter] = step.dead_letters
    assert letter.reason == "PERMANENT"
    assert "unknown currency XXX" in letter.message
    topic, _partition, offset = letter.source
    assert (topic, offset) == ("orders", 0)
    assert letter.headers["trace"] == "t9"  # the original headers are kept
    assert letter.headers["eos.dlq.error.class"] == "eos.errors.PermanentError"
    assert driver.state("customer-totals") == {}  # a failed order leaves no trace


def test_a_value_that_breaks_the_contract_is_dead_lettered(driver: TestDriver) -> None:
    bad = {**order("o-3"), "quantity": 0}  # Avro allows it, the pydantic model does not
    [letter] = driver.pipe("orders", bad, key="c-1").dead_letters
    assert letter.reason == "INVALID_VALUE"
