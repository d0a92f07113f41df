"""Orders for the tests: a spread of customers and currencies, and the bad ones a
producer somewhere will send (an unknown currency, a quantity the model refuses)."""

from __future__ import annotations

from typing import Any

__all__ = ["sample_orders"]


def sample_orders(count: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for n in range(count):
        customer = f"c-{n % 40}"
        out.append(
            (
                customer,
                {
                    "order_id": f"o-{n}",
                    "customer": customer,
                    "sku": f"sku-{n % 7}",
                    "quantity": 0 if n % 97 == 5 else 1 + n % 5,
                    "unit_price_minor": 100 + n % 13,
                    "currency": "XXX" if n % 100 == 0 else ("EUR", "USD")[n % 2],
                },
            )
        )
    return out
