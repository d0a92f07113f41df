"""The project's exceptions at the ground floor: every layer may raise them.

`EosError` is the root: a caller that wants to tell the project's own failures from
anything else catches it. `PermanentError` and `TransientError` are what a transform
(or the serde layer on its behalf) raises about one record; the engine re-exports them.
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "EosError", "PermanentError", "RunFailed", "TransientError"]


class EosError(Exception):
    """The root of the project's exceptions."""


class PermanentError(EosError):
    """The record is invalid and never will be valid: it goes to the dead-letter topic."""


class TransientError(EosError):
    """Try again later (a dependency is down). Retried with backoff; after the configured
    attempts the record is treated as permanently failed."""


class ConfigurationError(EosError):
    """The setup is wrong (a missing topic, a bad setting): the message says what to fix."""


class RunFailed(EosError):
    """A run of a tool (the demo, the benchmark) could not complete: the message says why."""
