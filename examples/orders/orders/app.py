"""Orders in, priced orders out; each customer's running total in a state store.

Topic names come from ORDERS_* settings so a test can give each run its own topics.
Keyed by customer: a customer's orders are on one partition, in order, with its total.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from eos.config import EngineSettings
from eos.engine.api import InputRecord, OutputRecord, PermanentError
from eos.engine.app import App
from eos.engine.state import StateStore
from eos.serde.avro import AvroContract

SCHEMAS = Path(__file__).parent / "schemas"
CURRENCIES = {"EUR", "USD", "GBP"}


class OrdersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_")

    orders_topic: str = "orders"
    priced_topic: str = "orders.priced"
    totals_changelog: str = "orders.customer-totals"


class Order(BaseModel):
    order_id: str = Field(min_length=1)
    customer: str = Field(min_length=1)
    sku: str
    quantity: int = Field(gt=0)
    unit_price_minor: int = Field(ge=0)
    currency: str


def contract(name: str, model: type[BaseModel] | None = None) -> AvroContract:
    return AvroContract((SCHEMAS / f"{name}.avsc").read_text(), model)


def build(_settings: EngineSettings) -> App:
    topics = OrdersSettings()
    totals = StateStore("customer-totals", topics.totals_changelog)

    def price(record: InputRecord) -> list[OutputRecord]:
        order: Order = record.value
        if order.currency not in CURRENCIES:
            raise PermanentError(f"order {order.order_id}: unknown currency {order.currency}")
        total = order.quantity * order.unit_price_minor
        key = f"{order.customer}/{order.currency}"
        running = totals.get(record.partition, key, 0) + total
        totals.put(record.partition, key, running)
        priced = {
            "order_id": order.order_id,
            "customer": order.customer,
            "total_minor": total,
            "currency": order.currency,
            "customer_total_minor": running,
        }
        return [OutputRecord(topics.priced_topic, order.customer, priced)]

    return App(
        "orders",
        price,
        {topics.orders_topic: contract("order", Order)},
        {topics.priced_topic: contract("priced_order")},
        stores=(totals,),
    )
