"""Apicurio Registry, run for its Confluent-compatible API (`/apis/ccompat/v7`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from eos.stack.artifacts import APICURIO_VERSION, Artifacts
from eos.stack.java import find_java

CCOMPAT_PATH = "/apis/ccompat/v7"


@dataclass(frozen=True)
class RegistryNode:
    port: int
    name: str = "registry"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def argv(self, artifacts: Artifacts, marker: str) -> list[str]:
        return [
            find_java(21, f"Apicurio Registry {APICURIO_VERSION}"),
            "-Xmx512m",
            "-XX:+UseG1GC",
            marker,
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.port}",
            # The management interface is enabled at build time (the runtime switch
            # `quarkus.management.enabled=false` is ignored) and would take 0.0.0.0:9000,
            # so a second stack's registry could not start. Nothing here needs it: put it
            # on a free loopback port.
            "-Dquarkus.management.host=127.0.0.1",
            "-Dquarkus.management.port=0",
            "-Dquarkus.log.console.format=%d{HH:mm:ss,SSS} %-5p [%c{2.}] %s%e%n",
            # Tests and users delete subjects they created, as with Confluent's registry.
            "-Dapicurio.rest.deletion.artifact.enabled=true",
            "-Dapicurio.rest.deletion.artifact-version.enabled=true",
            "-Dapicurio.rest.deletion.group.enabled=true",
            "-jar",
            str(artifacts.apicurio_jar),
        ]

    def ready(self) -> bool:
        """Ready when `GET subjects` answers with a JSON list."""
        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as resp:
                return resp.status == 200 and isinstance(json.loads(resp.read()), list)
        except (urllib.error.URLError, OSError, ValueError):
            return False
