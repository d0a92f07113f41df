"""Secrets never leave the process: every text that does passes through a Redactor."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Redactor"]


class Redactor:
    """Removes secret values from any text that leaves the process."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
