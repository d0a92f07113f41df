"""Resolve Apache Kafka and Apicurio Registry from Maven Central into a cache folder, once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from eos.stack.layout import StackLayout

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka's release tarball ships log4j2 and its SLF4J 1.x binding; the Maven POM does not.
LOG4J_VERSION = "2.25.2"
APICURIO_VERSION = "3.3.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

_KAFKA_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eos.stack</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


class ToolMissing(RuntimeError):
    """java or mvn is not installed."""


@dataclass(frozen=True)
class Artifacts:
    kafka_libs: Path
    apicurio_home: Path

    @property
    def kafka_classpath(self) -> str:
        return ":".join(str(p) for p in sorted(self.kafka_libs.glob("*.jar")))

    @property
    def apicurio_jar(self) -> Path:
        top = self.apicurio_home / "quarkus-run.jar"
        return top if top.exists() else self.apicurio_home / "quarkus-app" / "quarkus-run.jar"


def require_tools() -> None:
    """Fail with the exact install command when java or mvn is missing."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise ToolMissing(
            f"{' and '.join(missing)} not found on PATH. The local stack resolves Kafka and the "
            "schema registry with Maven and runs them with Java. Install them with:\n"
            "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jdk-headless maven\n"
            "  macOS:         brew install openjdk@21 maven\n"
            "or point EOS_BOOTSTRAP_SERVERS / EOS_SCHEMA_REGISTRY_URL at an existing cluster."
        )


def resolve(layout: StackLayout) -> Artifacts:
    """Download what is missing from the cache; a warm cache costs nothing."""
    require_tools()
    artifacts = Artifacts(
        kafka_libs=layout.artifacts / f"kafka-{KAFKA_VERSION}" / "libs",
        apicurio_home=layout.artifacts / f"apicurio-registry-{APICURIO_VERSION}",
    )
    if not (artifacts.kafka_libs.parent / ".complete").exists():
        _resolve_kafka(layout, artifacts.kafka_libs)
    if not (artifacts.apicurio_home / ".complete").exists():
        _resolve_apicurio(layout, artifacts.apicurio_home)
    return artifacts


def _resolve_kafka(layout: StackLayout, libs: Path) -> None:
    work = libs.parent
    if work.exists():
        shutil.rmtree(work)
    libs.mkdir(parents=True)
    pom = work / "pom.xml"
    pom.write_text(_KAFKA_POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    _mvn(
        layout,
        f"Apache Kafka {KAFKA_VERSION}",
        [
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
    )
    (work / ".complete").write_text(KAFKA_VERSION)


def _resolve_apicurio(layout: StackLayout, home: Path) -> None:
    download = layout.artifacts / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    _mvn(
        layout,
        f"Apicurio Registry {APICURIO_VERSION} (about 160 MB)",
        [
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact=io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all",
            f"-DoutputDirectory={download}",
        ],
    )
    archive = download / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
    if home.exists():
        shutil.rmtree(home)
    staging = home.with_name(home.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    # The archive may wrap everything in one top folder; keep the layout flat either way.
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        entries[0].rename(home)
        staging.rmdir()
    else:
        staging.rename(home)
    archive.unlink()
    (home / ".complete").write_text(APICURIO_VERSION)


def _mvn(layout: StackLayout, what: str, args: list[str]) -> None:
    cmd = ["mvn", "-B", "-ntp", "-q", f"-Dmaven.repo.local={layout.maven_repo}", *args]
    log = layout.run / "maven.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"resolving {what} from Maven Central (once; cached in {layout.home})", flush=True)
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=layout.artifacts)
        _report_progress(proc, layout.maven_repo, started)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(
            f"Maven could not resolve {what} (exit {proc.returncode}). Check that Maven "
            f"Central is reachable. Full log: {log}\n{tail}"
        )
    print(f"resolved {what} in {time.monotonic() - started:.0f}s", flush=True)


def _report_progress(proc: subprocess.Popen[bytes], repo: Path, started: float) -> None:
    """Print a line every 10 s with the bytes fetched so far and the rate."""
    done = threading.Event()

    def waiter() -> None:
        proc.wait()
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    while not done.wait(10):
        size = _tree_size(repo)
        elapsed = time.monotonic() - started
        print(
            f"  ... {elapsed:.0f}s, {size / 1e6:.0f} MB fetched "
            f"({size / 1e6 / max(elapsed, 1):.1f} MB/s)",
            file=sys.stdout,
            flush=True,
        )


def _tree_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
