"""The currencies the ledger knows, in one place: ISO 4217 code, minor-unit digits and the
largest amount one payment may move. Validation, the load generator and the verifier all
read this table, so a limit means the same in every currency (1,000,000 units of EUR is
100,000,000 minor units; of JPY, 1,000,000; of KWD, 1,000,000,000)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CURRENCIES", "MAX_UNITS", "Currency", "currency"]

MAX_UNITS = 1_000_000  # the default limit per payment, in major units


@dataclass(frozen=True)
class Currency:
    code: str
    digits: int  # minor-unit digits (ISO 4217 exponent)
    max_minor: int  # the largest amount one payment may move, in minor units

    @classmethod
    def of(cls, code: str, digits: int, max_units: int = MAX_UNITS) -> Currency:
        return cls(code, digits, max_units * 10**digits)

    def units(self, minor: int) -> str:
        """`minor` written in major units: 12345 EUR -> "123.45 EUR"."""
        if self.digits == 0:
            return f"{minor} {self.code}"
        sign, whole = ("-" if minor < 0 else ""), abs(minor)
        major, frac = divmod(whole, 10**self.digits)
        return f"{sign}{major}.{frac:0{self.digits}d} {self.code}"


_TWO = "AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF INR MXN NOK NZD PLN SEK SGD USD ZAR"
_DIGITS = {**dict.fromkeys(_TWO.split(), 2), "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}

CURRENCIES: dict[str, Currency] = {c: Currency.of(c, d) for c, d in sorted(_DIGITS.items())}


def currency(code: str) -> Currency | None:
    """The table's row for `code` (exact, upper case), or None for a currency it lacks."""
    return CURRENCIES.get(code)
