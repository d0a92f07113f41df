"""The local stack: KRaft broker(s) and a schema registry as background processes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from eos.stack import artifacts as artifacts_mod
from eos.stack.kafka import (
    LONE_SESSION_S,
    SCRAM_MECHANISM,
    KafkaNode,
    SaslPlain,
    SecureListener,
    random_cluster_id,
    write_private,
)
from eos.stack.layout import StackLayout
from eos.stack.processes import ManagedProcess, port_open
from eos.stack.registry import RegistryAuth, RegistryNode
from eos.stack.tls import ensure_tls


class StackError(RuntimeError):
    """The stack could not be brought to the state asked for; the message says why."""


@dataclass(frozen=True)
class StackSpec:
    brokers: int = 1
    kafka_port: int = 9092
    registry_port: int = 8081
    registry: bool = True
    sasl: SaslPlain | None = None  # an extra SASL_PLAINTEXT listener; off by default
    secure: SecureListener | None = None  # an extra SASL_SSL listener; off by default

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> StackSpec:
        """The spec `up` saved; a field missing there (saved by an older version) keeps
        its default."""
        given = {f.name: saved[f.name] for f in fields(cls) if f.name in saved}
        if isinstance(given.get("sasl"), dict):
            given["sasl"] = SaslPlain(**given["sasl"])
        if isinstance(given.get("secure"), dict):
            given["secure"] = SecureListener(**given["secure"])
        return cls(**given)

    def nodes(self) -> list[KafkaNode]:
        return [
            KafkaNode(i, self.brokers, self.kafka_port, self.sasl, self.secure)
            for i in range(1, self.brokers + 1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes())

    @property
    def sasl_bootstrap_servers(self) -> str | None:
        """The SASL_PLAINTEXT listeners' addresses, when the stack has them."""
        if self.sasl is None:
            return None
        return ",".join(f"127.0.0.1:{n.sasl_port}" for n in self.nodes())

    @property
    def secure_bootstrap_servers(self) -> str | None:
        """The SASL_SSL listeners' addresses, when the stack has them."""
        if self.secure is None:
            return None
        return ",".join(f"127.0.0.1:{n.secure_port}" for n in self.nodes())

    def registry_node(self) -> RegistryNode:
        """The registry; with the SASL_SSL listener, over HTTPS with basic auth of the
        same user."""
        if self.secure is None:
            return RegistryNode(self.registry_port)
        auth = RegistryAuth(self.secure.tls, self.secure.user, self.secure.password)
        return RegistryNode(self.registry_port, auth=auth)

    @property
    def registry_url(self) -> str | None:
        return self.registry_node().url if self.registry else None


@dataclass(frozen=True)
class NodeStatus:
    name: str
    pid: int | None
    port: int
    answering: bool
    stale_pid_file: bool
    log_file: Path


class Stack:
    """One stack's processes, found through its run folder.

    `up` records what it started in `stack.json`, so a later `status` or `down` (from
    another shell) acts on exactly that.
    """

    def __init__(
        self, layout: StackLayout | None = None, say: Callable[[str], None] = print
    ) -> None:
        self.layout = layout or StackLayout.create()
        self.say = say
        saved = self._saved()
        self.spec = StackSpec.from_saved(saved) if saved else StackSpec()

    @property
    def _spec_file(self) -> Path:
        return self.layout.run / "stack.json"

    def _saved(self) -> dict[str, Any] | None:
        try:
            saved: dict[str, Any] = json.loads(self._spec_file.read_text())
            return saved
        except (FileNotFoundError, ValueError):
            return None

    def _any_running(self, spec: StackSpec) -> bool:
        return any(self._process(n.name).running_pid() for n in spec.nodes()) or (
            spec.registry and self._process("registry").running_pid() is not None
        )

    def _process(self, name: str) -> ManagedProcess:
        return ManagedProcess(
            name=name,
            marker=f"-Deos.stack.id={self.layout.run.resolve()}/{name}",
            pid_file=self.layout.pid_file(name),
            log_file=self.layout.log_file(name),
        )

    # -- up -----------------------------------------------------------------------------

    def up(self, requested: StackSpec, timeout: float = 180.0) -> None:
        if self.spec != requested and self._any_running(self.spec):
            raise StackError(
                f"a different stack is already running from {self.layout.run} "
                f"({self.spec.brokers} broker(s) on {self.spec.bootstrap_servers}). "
                "Run `eos stack down` first, or use another --run-dir."
            )
        self.spec = requested
        saved = self._saved()
        if saved and saved.get("brokers") != requested.brokers:
            raise StackError(
                f"{self.layout.run} holds data of a {saved.get('brokers')}-broker cluster; "
                f"`eos stack down --wipe` before starting {requested.brokers} broker(s)."
            )
        self.layout.ensure()
        if requested.secure:
            ensure_tls(requested.secure.tls.folder)
        artifacts = artifacts_mod.resolve(self.layout)
        cluster_id = str(saved["cluster_id"]) if saved else random_cluster_id()
        write_private(self._spec_file, json.dumps({**asdict(requested), "cluster_id": cluster_id}))

        # Claim every port before starting anything: a port in use then fails `up`
        # without leaving part of the stack running.
        to_start = [
            node
            for node in requested.nodes()
            if self._claim(self._process(node.name), *node.ports())
        ]
        reg = requested.registry_node()
        start_registry = requested.registry and self._claim(self._process(reg.name), reg.port)

        started = time.monotonic()
        for node in to_start:
            proc = self._process(node.name)
            node.format_storage(self.layout, artifacts, cluster_id)
            proc.start(node.argv(self.layout, artifacts, proc.marker))
            self.say(f"started {node.name} on 127.0.0.1:{node.port} (log {proc.log_file})")
        if start_registry:
            proc = self._process(reg.name)
            reg.data_dir(self.layout).mkdir(parents=True, exist_ok=True)
            reg.write_config(self.layout)
            proc.start(reg.argv(self.layout, artifacts, proc.marker), cwd=self.layout.run)
            self.say(f"started registry on 127.0.0.1:{reg.port} (log {proc.log_file})")
        self._wait_ready(time.monotonic() + timeout)
        if requested.secure:
            store_scram_credential(requested.bootstrap_servers, requested.secure)
        self.say(f"stack ready in {time.monotonic() - started:.1f}s")
        self.say(f"  bootstrap servers: {requested.bootstrap_servers}")
        if requested.sasl:
            self.say(
                f"  SASL_PLAINTEXT (PLAIN, user {requested.sasl.user}): "
                f"{requested.sasl_bootstrap_servers}"
            )
        if requested.secure:
            self._say_secure(requested)
        if requested.registry_url:
            self.say(f"  schema registry (Confluent-compatible): {requested.registry_url}")
            self.say(f"  registry data in {reg.data_dir(self.layout)}")

    def _say_secure(self, spec: StackSpec) -> None:
        """The client settings for the SASL_SSL listener, printed without the password and
        written whole to a file only this user can read."""
        assert spec.secure is not None
        settings = secure_client_env(spec)
        env_file = self.layout.run / "secure-client.env"
        write_private(env_file, "".join(f"{k}={v}\n" for k, v in settings.items()))
        self.say(f"  SASL_SSL ({SCRAM_MECHANISM}, user {spec.secure.user}): client settings")
        for key, value in settings.items():
            secret = key in ("EOS_SASL_PASSWORD", "EOS_SCHEMA_REGISTRY_BASIC_AUTH")
            shown = f"(in {env_file})" if secret else value
            self.say(f"    {key}={shown}")
        self.say(f"  (set -a; . {env_file}; set +a) puts them in a shell's environment")

    def _claim(self, proc: ManagedProcess, *ports: int) -> bool:
        """True when `proc` must be started; False when ours is already running."""
        if proc.running_pid() is not None:
            self.say(f"{proc.name} already running (pid {proc.running_pid()})")
            return False
        if proc.stale():
            self.say(f"removing stale pid file {proc.pid_file} (pid {proc.read_pid()} is gone)")
            if proc.name.startswith("kafka") and self.spec.brokers == 1:
                self.say(
                    f"  {proc.name} was not stopped cleanly: it registers once its old "
                    f"session expires, up to {LONE_SESSION_S} s"
                )
            proc.pid_file.unlink()
        busy = [port for port in ports if port_open(port)]
        if busy:
            raise StackError(
                f"port {busy[0]} on 127.0.0.1 is in use by a process this stack did not start, "
                f"so {proc.name} cannot listen there. Stop that process, or start the stack "
                "on other ports (--kafka-port / --registry-port / --sasl-port)."
            )
        return True

    def _wait_ready(self, deadline: float) -> None:
        waiting = {n.name for n in self.spec.nodes()}
        if self.spec.registry:
            waiting.add("registry")
        last_line = time.monotonic()
        while waiting:
            for name in sorted(waiting):
                proc = self._process(name)
                if proc.exited():
                    raise StackError(
                        f"{name} exited during start-up. Last lines of {proc.log_file}:\n"
                        + _tail(proc.log_file, 25)
                    )
            if any(n.startswith("kafka-") for n in waiting) and self._kafka_ready():
                waiting -= {n.name for n in self.spec.nodes()}
            if "registry" in waiting and self.spec.registry_node().ready():
                waiting.discard("registry")
            if not waiting:
                return
            if time.monotonic() > deadline:
                logs = ", ".join(str(self._process(n).log_file) for n in sorted(waiting))
                raise StackError(
                    f"timed out waiting for {', '.join(sorted(waiting))} to answer. "
                    f"See the log(s): {logs}"
                )
            if time.monotonic() - last_line > 10:
                self.say(f"  waiting for {', '.join(sorted(waiting))} ...")
                last_line = time.monotonic()
            time.sleep(0.5)

    def _kafka_ready(self) -> bool:
        """Every broker's own listener is open and the cluster shows all of them. The
        metadata alone is not enough: after a hard bounce it still lists the dead
        broker's registration, while the restarted one opens its listener only once
        it has registered and caught up."""
        return all(port_open(n.port) for n in self.spec.nodes()) and kafka_answers(
            self.spec.bootstrap_servers, self.spec.brokers
        )

    # -- down / status / logs -------------------------------------------------------------

    def down(self, wipe: bool = False) -> None:
        if self._process("registry").stop():
            self.say("stopped registry")
        # All brokers at once: stopped one by one, the last of 3 controllers has lost its
        # quorum, its controlled shutdown hangs and it is only SIGKILLed after 30 s.
        brokers = [self._process(n.name) for n in self.spec.nodes()]
        with ThreadPoolExecutor(max_workers=len(brokers)) as pool:
            stopped = list(pool.map(ManagedProcess.stop, brokers))
        for proc, was_running in zip(brokers, stopped, strict=True):
            if was_running:
                self.say(f"stopped {proc.name}")
        if wipe:
            for folder in ("data", "config"):
                shutil.rmtree(self.layout.run / folder, ignore_errors=True)
            self._spec_file.unlink(missing_ok=True)
            self.say(f"wiped data in {self.layout.run}")

    def kill(self, name: str) -> int | None:
        """SIGKILL one node (`kafka-2`, `registry`) and wait until it is gone; its pid,
        or None when it was not running. `up` with the same spec starts it again."""
        return self._process(name).kill()

    def status(self) -> list[NodeStatus]:
        out = []
        for node in self.spec.nodes():
            out.append(self._node_status(node.name, node.port))
        if self.spec.registry:
            out.append(self._node_status("registry", self.spec.registry_port))
        return out

    def _node_status(self, name: str, port: int) -> NodeStatus:
        proc = self._process(name)
        pid = proc.running_pid()
        return NodeStatus(
            name, pid, port, pid is not None and port_open(port), proc.stale(), proc.log_file
        )

    def logs(self, name: str | None, lines: int) -> str:
        names = [name] if name else [s.name for s in self.status()]
        return "\n".join(
            f"==> {self._process(n).log_file} <==\n{_tail(self._process(n).log_file, lines)}"
            for n in names
        )


def secure_client_env(spec: StackSpec) -> dict[str, str]:
    """The EOS_* settings of a client of the SASL_SSL listener (the password included)."""
    assert spec.secure is not None and spec.secure_bootstrap_servers is not None
    ca = str(spec.secure.tls.ca)
    env = {
        "EOS_BOOTSTRAP_SERVERS": spec.secure_bootstrap_servers,
        "EOS_SECURITY_PROTOCOL": "SASL_SSL",
        "EOS_SASL_MECHANISM": SCRAM_MECHANISM,
        "EOS_SASL_USERNAME": spec.secure.user,
        "EOS_SASL_PASSWORD": spec.secure.password,
        "EOS_SSL_CA_LOCATION": ca,
    }
    if spec.registry_url:
        env["EOS_SCHEMA_REGISTRY_URL"] = spec.registry_url
        env["EOS_SCHEMA_REGISTRY_BASIC_AUTH"] = f"{spec.secure.user}:{spec.secure.password}"
        env["EOS_SCHEMA_REGISTRY_CA_LOCATION"] = ca
    return env


def store_scram_credential(bootstrap: str, secure: SecureListener) -> None:
    """Creates or replaces the user's SCRAM credential, through the PLAINTEXT listener."""
    from confluent_kafka.admin._scram import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    upsert = UserScramCredentialUpsertion(
        secure.user,
        ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
        secure.password.encode(),
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)


def kafka_answers(bootstrap: str, expect_brokers: int = 1, timeout: float = 3.0) -> bool:
    """True when the cluster answers a metadata request and shows all its brokers."""
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "log_level": 0, "socket.connection.setup.timeout.ms": 2000}
    )
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception:  # librdkafka raises KafkaException subclasses on timeouts
        return False
    return len(meta.brokers) >= expect_brokers


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"
