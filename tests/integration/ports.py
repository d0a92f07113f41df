"""Free local ports for tests that start a private stack beside the shared one."""

from __future__ import annotations

import socket

__all__ = ["free_block"]

_taken: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(start: int, size: int) -> int:
    """The first `size` consecutive free ports at or after `start`, never handed out twice
    in one session. Keep `start` below the kernel's ephemeral range (Linux: from 32768):
    a port there can be taken by an outgoing connection between this check and the bind."""
    for base in range(start, start + 2000, 10):
        block = range(base, base + size)
        if _taken.isdisjoint(block) and all(_bindable(p) for p in block):
            _taken.update(block)
            return base
    raise RuntimeError(f"no {size} free consecutive ports from {start}")
