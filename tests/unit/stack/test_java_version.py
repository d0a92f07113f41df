"""Finding a Java runtime: `java -version` parsing and the choice among candidates."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from eos.stack import java as java_mod
from eos.stack.artifacts import ToolMissing
from eos.stack.java import find_java, java_major

_serial = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    java_major.cache_clear()
    find_java.cache_clear()
    yield
    java_major.cache_clear()
    find_java.cache_clear()


def fake_java(folder: Path, text: str, stream: str = "stderr", exit_code: int = 0) -> str:
    """A `java` that prints `text` for `-version`, as the real one does (on stderr)."""
    script = folder / f"java-{next(_serial)}"
    redirect = " >&2" if stream == "stderr" else ""
    lines = "".join(f"echo '{line}'{redirect}\n" for line in text.splitlines())
    script.write_text(f"#!/bin/sh\n{lines}exit {exit_code}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("version_output", "major"),
    [
        (
            'openjdk version "17.0.15" 2025-04-15\n'
            "OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n"
            "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)",
            17,
        ),
        ('java version "1.8.0_402"\nJava(TM) SE Runtime Environment (build 1.8.0_402-b06)', 8),
        ('openjdk version "1.8.0_412"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "21.0.4" 2024-07-16 LTS', 21),
        ('openjdk version "25.0.1" 2025-10-21', 25),
        ('java version "11.0.2" 2019-01-15 LTS', 11),
        ('openjdk version "9-ea"', 9),
    ],
)
def test_major_version_is_parsed(tmp_path: Path, version_output: str, major: int) -> None:
    assert java_major(fake_java(tmp_path, version_output)) == major


def test_version_printed_on_stdout_is_read_too(tmp_path: Path) -> None:
    assert java_major(fake_java(tmp_path, 'openjdk version "17.0.1"', stream="stdout")) == 17


def test_picked_up_java_options_line_does_not_confuse_the_parser(tmp_path: Path) -> None:
    out = 'Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "21.0.2" 2024-01-16'
    assert java_major(fake_java(tmp_path, out)) == 21


@pytest.mark.parametrize("garbage", ["", "command not found", "version 17", "Error: no JVM"])
def test_unparsable_output_is_unusable(tmp_path: Path, garbage: str) -> None:
    assert java_major(fake_java(tmp_path, garbage or " ", exit_code=1)) is None


def test_missing_or_non_executable_binary_is_unusable(tmp_path: Path) -> None:
    assert java_major(str(tmp_path / "no-such-java")) is None
    not_executable = tmp_path / "java-plain-file"
    not_executable.write_text("echo 'openjdk version \"17\"'\n")
    assert java_major(str(not_executable)) is None


def test_find_java_takes_the_first_candidate_new_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_java(tmp_path, 'java version "1.8.0_402"')
    seventeen = fake_java(tmp_path, 'openjdk version "17.0.15"')
    twenty_one = fake_java(tmp_path, 'openjdk version "21.0.4"')
    monkeypatch.setattr(java_mod, "_candidates", lambda: [old, seventeen, twenty_one])
    assert find_java(17, "Kafka") == seventeen
    assert find_java(21, "Registry") == twenty_one


def test_find_java_names_what_it_saw_when_nothing_is_new_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_java(tmp_path, 'java version "1.8.0_402"')
    broken = fake_java(tmp_path, "nothing useful", exit_code=1)
    monkeypatch.setattr(java_mod, "_candidates", lambda: [old, broken])
    with pytest.raises(ToolMissing) as excinfo:
        find_java(17, "Apache Kafka 4")
    message = str(excinfo.value)
    assert "Apache Kafka 4 needs Java 17 or newer" in message
    assert f"{old} (8)" in message
    assert f"{broken} (unusable)" in message
    assert "EOS_JAVA" in message


def test_eos_java_comes_first_among_candidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = fake_java(tmp_path, 'openjdk version "21.0.4"')
    monkeypatch.setenv("EOS_JAVA", chosen)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    candidates = java_mod._candidates()
    assert candidates[0] == chosen
    assert candidates[1] == str(tmp_path / "jdk" / "bin" / "java")
    assert len(candidates) == len(set(candidates))
    assert find_java(17, "Kafka") == chosen
