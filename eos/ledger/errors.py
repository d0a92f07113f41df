"""The ledger's own failures, for the command line to print in one line."""

from __future__ import annotations

from eos.errors import ConfigurationError, EosError

__all__ = ["OutcomeUnknown", "TopicsNotCoPartitioned", "UndeliveredRecords"]


class TopicsNotCoPartitioned(ConfigurationError):
    """A ledger topic exists with another partition count than the one asked for."""


class UndeliveredRecords(EosError):
    """The load generator could not deliver every record it produced."""


class OutcomeUnknown(EosError):
    """A payment was sent, or may have been, but its outcome did not arrive. The ledger
    decides a payment id once, so sending the same request again is safe."""

    def __init__(self, payment_id: str, what: str) -> None:
        super().__init__(
            f"{what}; it may still be decided: sending the same payment again with the "
            "same payment id is safe (the ledger answers a retry with the original "
            "outcome, marked replay)"
        )
        self.payment_id = payment_id
        self.what = what
