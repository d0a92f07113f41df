"""The house rules of the source tree, checked: sizes, and which layer may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EOS = Path(__file__).resolve().parents[2] / "eos"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_PROCESSOR_LINES = 350

# Each package and the ones it must never import.
FORBIDDEN = {
    "serde": ("eos.engine", "eos.ledger", "eos.testing", "eos.tools", "eos.cli"),
    "kafka": ("eos.engine", "eos.ledger", "eos.testing", "eos.tools", "eos.cli"),
    "engine": ("eos.ledger", "eos.testing", "eos.tools", "eos.cli", "eos.examples"),
    "ledger": ("eos.testing", "eos.tools", "eos.cli"),
    "stack": ("eos.engine", "eos.ledger", "eos.testing", "eos.tools", "eos.cli"),
    "ops": ("eos.engine", "eos.kafka", "eos.ledger", "eos.testing", "eos.tools", "eos.cli"),
}
LIBRARY = tuple(FORBIDDEN)


def _modules(under: Path = EOS) -> list[Path]:
    return sorted(under.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_is_over_the_size_limit() -> None:
    big = {
        str(p.relative_to(EOS)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}
    processor = len((EOS / "engine" / "processor.py").read_text().splitlines())
    assert processor < MAX_PROCESSOR_LINES


def test_no_function_is_over_the_size_limit() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(EOS)}:{node.lineno} {node.name} ({lines})")
    assert long == []


@pytest.mark.parametrize("package", LIBRARY)
def test_a_layer_imports_nothing_above_it(package: str) -> None:
    wrong = [
        f"{path.relative_to(EOS)} imports {name}"
        for path in _modules(EOS / package)
        for name in _imports(path)
        if name.startswith(FORBIDDEN[package])
    ]
    assert wrong == []


@pytest.mark.parametrize("package", LIBRARY)
def test_only_the_cli_parses_arguments_or_exits(package: str) -> None:
    wrong = [
        f"{path.relative_to(EOS)}: {word}"
        for path in _modules(EOS / package)
        for word in ("argparse", "SystemExit")
        if word in path.read_text()
    ]
    assert wrong == []


def test_the_wire_format_header_is_parsed_in_one_place() -> None:
    places = [
        str(p.relative_to(EOS))
        for p in _modules()
        if any(f in p.read_text() for f in ('">bI"', '">BI"', "unpack_from("))
    ]
    assert places == ["serde/wire.py"]


def _asks_for_offsets(path: Path) -> bool:
    """Calls that fetch watermarks or committed offsets from a client directly. (A
    Consumer's `committed(partitions)` takes one argument; `Offsets.committed(group,
    partitions)` two.)"""
    direct = (
        "get_watermark_offsets",
        "list_offsets",
        "list_consumer_group_offsets",
        "offsets_for_times",
    )
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in direct or (name == "committed" and len(node.args) == 1):
                return True
    return False


def test_offset_and_lag_arithmetic_lives_in_one_module() -> None:
    root = EOS.parent
    files = [*_modules(), *_modules(root / "tests")]
    places = [str(p.relative_to(root)) for p in files if _asks_for_offsets(p)]
    # The lag test reads with plain clients on purpose: eos's figures are checked
    # against offsets read independently of it.
    assert sorted(places) == ["eos/kafka/offsets.py", "tests/integration/test_lag.py"]
