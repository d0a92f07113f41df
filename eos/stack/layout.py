"""Where the local stack keeps its artifacts, data, logs and pid files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    explicit = os.environ.get("EOS_STACK_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "eos" / "stack"


@dataclass(frozen=True)
class StackLayout:
    """`home` holds the shared artifact cache; `run` one stack's data, logs and pids.

    Several stacks (the default one and, say, a 3-broker fault-test cluster) can share
    one artifact cache while each keeps its own run folder.
    """

    home: Path
    run: Path

    @classmethod
    def create(cls, home: Path | None = None, run: Path | None = None) -> StackLayout:
        home = home or default_home()
        return cls(home=home, run=run or home / "run")

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def maven_repo(self) -> Path:
        return self.home / "m2"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run / "logs" / f"{name}.log"

    def data_dir(self, name: str) -> Path:
        return self.run / "data" / name

    def ensure(self) -> None:
        for folder in (self.artifacts, self.run / "logs", self.run / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        # The run folder holds the data, the configs (a SASL password among them) and the
        # logs: this user's only.
        for folder in (self.run, self.run / "data", self.run / "logs"):
            folder.chmod(0o700)
