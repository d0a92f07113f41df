"""Against a real cluster: the app SIGKILLed inside a transaction, restarted, and every
order priced exactly once."""

from __future__ import annotations

from collections.abc import Callable

from orders.app import contract
from orders.samples import sample_orders

from eos.testing.apps import AppProcess
from eos.testing.checks import (
    assert_exactly_once,
    assert_no_hanging_transactions,
    by_field,
)
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import produce_avro
from eos.testing.topics import TopicSet

# Enough for some 100 transactions of 200: the kill must find one open, not a finished
# backlog.
ORDERS = 20_000


def test_a_kill_mid_transaction_prices_every_order_exactly_once(
    eos_cluster: KafkaCluster,
    order_topics: TopicSet,
    eos_app: Callable[..., AppProcess],
) -> None:
    topics = order_topics
    produce_avro(eos_cluster, topics["orders"], contract("order").schema_str, sample_orders(ORDERS))
    group = f"{topics['orders']}-app"
    app = eos_app(
        "orders.app:build",
        group_id=group,
        dlq_topic=topics["dlq"],
        batch_max_records=200,
        ORDERS_ORDERS_TOPIC=topics["orders"],
        ORDERS_PRICED_TOPIC=topics["priced"],
        ORDERS_TOTALS_CHANGELOG=topics["totals"],
    )
    app.kill_mid_transaction(eos_cluster, [topics["priced"]])
    app.restart()
    app.wait_caught_up(eos_cluster, group, [topics["orders"]])
    assert app.terminate() == 0

    assert_exactly_once(
        eos_cluster,
        topics["orders"],
        [topics["priced"]],
        dlq_topic=topics["dlq"],
        key=by_field(eos_cluster, "order_id"),
    )
    assert_no_hanging_transactions(eos_cluster, [topics["priced"], topics["totals"]])
