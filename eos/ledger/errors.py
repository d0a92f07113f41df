"""The ledger's own failures, for the command line to print in one line."""

from __future__ import annotations

from eos.errors import ConfigurationError, EosError

__all__ = ["TopicsNotCoPartitioned", "UndeliveredRecords"]


class TopicsNotCoPartitioned(ConfigurationError):
    """A ledger topic exists with another partition count than the one asked for."""


class UndeliveredRecords(EosError):
    """The load generator could not deliver every record it produced."""
