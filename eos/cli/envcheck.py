"""A misspelled EOS_* variable is not silently ignored: every EOS_* name in the
environment that no setting reads is warned about, with the closest known name."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from eos.config import EngineSettings, SecuritySettings
from eos.ledger.settings import LedgerSettings

__all__ = ["OTHER", "known", "unknown_variables"]

# Read by name outside the settings models (tools, the stack, the test plugin, logging).
OTHER = frozenset(
    {
        "EOS_JAVA",
        "EOS_KEEP_STACK",
        "EOS_LOG_FORMAT",
        "EOS_LOG_LEVEL",
        "EOS_SCHEMAS_DIR",
        "EOS_STACK_HOME",
        "EOS_STACK_SASL_PASSWORD",
        "EOS_TEST_NO_DOCKER",
    }
)


def known() -> frozenset[str]:
    """Every EOS_* variable something in eos reads."""
    names = {f"EOS_{f.upper()}" for f in EngineSettings.model_fields}
    names |= {f"EOS_{f.upper()}" for f in SecuritySettings.model_fields}
    names |= {f"EOS_LEDGER_{f.upper()}" for f in LedgerSettings.model_fields}
    return frozenset(names) | OTHER


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per EOS_* variable in `environ` that nothing reads, naming the closest
    known one when there is one."""
    names = known()
    lines = []
    for name in sorted(environ):
        if not name.startswith("EOS_") or name in names:
            continue
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{name} is not a setting of eos and is ignored{hint}")
    return lines
