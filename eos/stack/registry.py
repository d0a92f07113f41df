"""Apicurio Registry, run for its Confluent-compatible API (`/apis/ccompat/v7`)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from eos.stack.artifacts import APICURIO_VERSION, Artifacts
from eos.stack.java import find_java
from eos.stack.kafka import write_private
from eos.stack.layout import StackLayout
from eos.stack.tls import TlsFiles

CCOMPAT_PATH = "/apis/ccompat/v7"


@dataclass(frozen=True)
class RegistryAuth:
    """HTTPS with the stack's certificate, and HTTP basic authentication of one user
    (Quarkus's embedded user realm) on every path."""

    tls: TlsFiles  # the stack's certificates
    user: str
    password: str = field(repr=False)

    def properties(self) -> str:
        files = self.tls
        props = {
            "quarkus.http.insecure-requests": "disabled",
            "quarkus.http.ssl.certificate.files": files.server_cert,
            "quarkus.http.ssl.certificate.key-files": files.server_key,
            "quarkus.http.auth.basic": "true",
            "quarkus.security.users.embedded.enabled": "true",
            "quarkus.security.users.embedded.plain-text": "true",
            f"quarkus.security.users.embedded.users.{self.user}": self.password,
            f"quarkus.security.users.embedded.roles.{self.user}": "sr-admin",
            "quarkus.http.auth.permission.everything.paths": "/*",
            "quarkus.http.auth.permission.everything.policy": "authenticated",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class RegistryNode:
    port: int
    name: str = "registry"
    auth: RegistryAuth | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.auth else "http"
        return f"{scheme}://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def write_config(self, layout: StackLayout) -> None:
        """Quarkus reads config/application.properties under its working folder (the
        run folder): the secured registry's settings go there, where `ps` does not
        show the password."""
        path = layout.run / "config" / "application.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.auth is None:
            path.unlink(missing_ok=True)
        else:
            write_private(path, self.auth.properties())

    def data_dir(self, layout: StackLayout) -> Path:
        return layout.data_dir(self.name).resolve()

    def jdbc_url(self, layout: StackLayout) -> str:
        """The H2 file database that holds every subject, version and id.

        H2's default MVStore file is crash-safe (a SIGKILL loses no committed data and
        leaves a file that opens). WRITE_DELAY=0 writes each commit before the registry
        answers, instead of up to half a second later, so a kill right after a
        registration does not lose it.
        """
        path = self.data_dir(layout) / "registry"
        if ";" in str(path):
            raise RuntimeError(f"the registry's data path cannot contain ';': {path}")
        return f"jdbc:h2:file:{path};WRITE_DELAY=0"

    def argv(self, layout: StackLayout, artifacts: Artifacts, marker: str) -> list[str]:
        return [
            find_java(21, f"Apicurio Registry {APICURIO_VERSION}"),
            "-Xmx512m",
            "-XX:+UseG1GC",
            marker,
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.port}",
            f"-Dquarkus.http.ssl-port={self.port}",
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
            # SQL storage on H2, as by default, but in a file instead of in memory: a
            # restart must not hand out ids 1, 2, 3 again for other schemas.
            "-Dapicurio.storage.kind=sql",
            "-Dapicurio.storage.sql.kind=h2",
            f"-Dapicurio.datasource.url={self.jdbc_url(layout)}",
            "-jar",
            str(artifacts.apicurio_jar),
        ]

    def ready(self) -> bool:
        """Ready when `GET subjects` answers with a JSON list."""
        request = urllib.request.Request(f"{self.url}/subjects")
        context = None
        if self.auth is not None:
            request.add_header("Authorization", self.auth.header())
            context = ssl.create_default_context(cafile=str(self.auth.tls.ca))
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as resp:
                return resp.status == 200 and isinstance(json.loads(resp.read()), list)
        except (urllib.error.URLError, OSError, ValueError):
            return False
