"""Unknown EOS_* variables are warned about; every one eos reads is known."""

from __future__ import annotations

import re
from pathlib import Path

from eos.cli.envcheck import known, unknown_variables


def test_a_misspelled_variable_is_named_with_the_closest_setting() -> None:
    lines = unknown_variables(
        {"EOS_BOOTSTRAP_SERVER": "x", "EOS_GROUP_ID": "g", "PATH": "/bin", "EOS_ZZZ": "1"}
    )
    assert lines == [
        "EOS_BOOTSTRAP_SERVER is not a setting of eos and is ignored; "
        "did you mean EOS_BOOTSTRAP_SERVERS?",
        "EOS_ZZZ is not a setting of eos and is ignored",
    ]


def test_every_variable_eos_reads_is_known() -> None:
    root = Path(__file__).resolve().parents[2] / "eos"
    read = set()
    for path in root.rglob("*.py"):
        read |= set(re.findall(r"\bEOS_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    prefixes = {"EOS_LEDGER", "EOS_SASL", "EOS_SSL"}  # named as a prefix in docstrings
    assert read - known() - prefixes == set()
