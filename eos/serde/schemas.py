"""Load the Avro schemas of `schemas/`, the single source of truth for every record."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from eos.serde.avro import AvroContract


def schemas_dir() -> Path:
    explicit = os.environ.get("EOS_SCHEMAS_DIR")
    if explicit:
        return Path(explicit)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (base / "schemas").is_dir():
            return base / "schemas"
    raise FileNotFoundError("no schemas/ folder found; set EOS_SCHEMAS_DIR")


def load_schema(name: str) -> str:
    return (schemas_dir() / f"{name}.avsc").read_text()


def contract(name: str, model: type[BaseModel] | None = None) -> AvroContract:
    return AvroContract(load_schema(name), model)
