"""Which instance this process is: a slot of its group on this host, held by a file lock.

The transactional.id is <prefix>-<group>-<instance>, so two processes with the same
instance id fence each other in turn. Left unset, the instance id is <hostname>-<n>, n
the lowest slot of the group free on this host: slot n is an exclusive, non-blocking
`flock` on <state dir>/<group>/instance-<n>.lock, held for the life of the process. The
OS drops the lock when the process dies, even on SIGKILL, so a restarted process takes
the same slot (the same transactional.id) back at once, and its init_transactions
aborts its predecessor's open transaction at once.

An instance id given explicitly is locked under its own name; when another live process
holds it, the start is refused (ConfigurationError) naming the pid in the lock file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from eos.config import EngineSettings
from eos.errors import ConfigurationError

__all__ = ["InstanceClaim", "claim_instance", "stores_dir"]


class InstanceClaim:
    """A held instance slot; `release` (or the process ending) frees it. The lock file
    stays: deleting it could let two processes lock two different files of one name.

    `crashed` is the pid of the slot's previous holder when it ended without releasing
    it (killed, or died): its file still named it. A clean release empties the file."""

    def __init__(self, instance_id: str, path: Path, fd: int, crashed: str = "") -> None:
        self.instance_id = instance_id
        self.path = path
        self.crashed = crashed
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale pid for the next reader
        finally:
            os.close(fd)  # releases the flock

    def __enter__(self) -> InstanceClaim:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def claim_instance(settings: EngineSettings) -> tuple[EngineSettings, InstanceClaim]:
    """The settings with this process's instance id, and the claim that holds it."""
    group_dir = _group_dir(settings.state_dir, settings.group_id)
    host = socket.gethostname()
    if "instance_id" in settings.model_fields_set:
        name = settings.instance_id
        path = group_dir / _lock_name(name, host)
        fd, holder = _try_lock(path)
        if fd is None:
            raise ConfigurationError(
                f"instance {name} of group {settings.group_id} is already running on this "
                f"host (pid {holder or 'unknown'}, lock {path}): give each process its own "
                "EOS_INSTANCE_ID (or leave it unset to get a free slot), or stop the other one"
            )
        return settings, InstanceClaim(name, path, fd, holder)
    slot = 0
    while True:
        path = group_dir / f"instance-{slot}.lock"
        fd, before = _try_lock(path)
        if fd is not None:
            name = f"{host}-{slot}"
            resolved = settings.model_copy(update={"instance_id": name})
            return resolved, InstanceClaim(name, path, fd, before)
        slot += 1


def stores_dir(settings: EngineSettings) -> Path:
    """Where this instance keeps its local state stores: its own folder, used only by
    the process holding its slot (`claim_instance`)."""
    group_dir = _group_dir(settings.state_dir, settings.group_id)
    return group_dir / "stores" / quote(settings.instance_id, safe="-_.")


def _group_dir(state_dir: Path, group: str) -> Path:
    safe = quote(group, safe="-_.")
    if safe in ("", ".", ".."):
        safe = safe.replace(".", "%2E") or "%00"
    path = state_dir / safe
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the state directory {path} ({exc.strerror}): "
            "set EOS_STATE_DIR to a writable directory"
        ) from exc
    return path


def _lock_name(instance_id: str, host: str) -> str:
    """An explicit id that is slot n's id locks slot n's file, so it conflicts with a
    process that took slot n; any other id has a file of its own."""
    slot = re.fullmatch(re.escape(host) + r"-(0|[1-9][0-9]*)", instance_id)
    if slot:
        return f"instance-{slot.group(1)}.lock"
    return f"named-{quote(instance_id, safe='-_.')}.lock"


def _try_lock(path: Path) -> tuple[int | None, str]:
    """(the locked fd with this pid written in it, the pid an earlier holder left in it:
    "" unless it died holding it) or (None, the live holder's pid)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot open the instance lock {path} ({exc.strerror}): "
            "set EOS_STATE_DIR to a writable directory"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None, holder
        raise ConfigurationError(f"cannot lock {path} ({exc.strerror})") from exc
    before = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd, before
