"""KRaft nodes (combined broker + controller) and how to format and start them."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from eos.stack.artifacts import Artifacts
from eos.stack.java import find_java
from eos.stack.layout import StackLayout
from eos.stack.tls import TlsFiles

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
"""


PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
_USER = re.compile(r"[A-Za-z0-9._-]+")
_PASSWORD = re.compile(r"[ !#-\[\]-~]+")  # printable ASCII but " and \


@dataclass(frozen=True)
class SaslPlain:
    """An extra SASL_PLAINTEXT listener (mechanism PLAIN) that admits one user, beside
    the PLAINTEXT one everything else uses. Node i listens on `port` + i - 1."""

    port: int
    user: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        # Both go unescaped into a quoted JAAS option in a properties file, which Java
        # reads as ISO-8859-1 with backslash escapes.
        if not _USER.fullmatch(self.user):
            raise ValueError(f"SASL user {self.user!r}: use letters, digits, '.', '_' or '-' only")
        if not _PASSWORD.fullmatch(self.password):
            raise ValueError(
                "the SASL password must be printable ASCII without quotes or backslashes"
            )

    def jaas_config(self) -> str:
        return f'{PLAIN_LOGIN} required user_{self.user}="{self.password}";'


# A lone node's broker session: longer than the pauses a laptop or a test inflicts
# (the frozen-broker test stops the node for 30 s), short enough that a node restarted
# after a kill registers within a minute. Registration is retried for longer still.
LONE_SESSION_S = 45
LONE_REGISTRATION_S = 150

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class SecureListener:
    """A SASL_SSL listener for clients: SCRAM-SHA-512 over TLS with the stack's own
    certificate (`eos.stack.tls`). The brokers' traffic among themselves and with the
    controllers stays on the PLAINTEXT listener, which only 127.0.0.1 reaches. Node i
    listens on `port` + i - 1; `eos stack up` stores the user's SCRAM credential."""

    port: int
    user: str
    password: str = field(repr=False)
    keystore: str  # the PEM keystore: the servers' key and certificate chain

    def __post_init__(self) -> None:
        if not _USER.fullmatch(self.user):
            raise ValueError(f"SASL user {self.user!r}: use letters, digits, '.', '_' or '-' only")
        if len(self.password) < 8:
            raise ValueError("the SASL password must have at least 8 characters")

    @property
    def tls(self) -> TlsFiles:
        """The stack's certificates: the keystore's folder."""
        return TlsFiles(Path(self.keystore).parent)


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    cluster_size: int
    base_port: int
    sasl: SaslPlain | None = None
    secure: SecureListener | None = None

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}"

    @property
    def port(self) -> int:
        return self.base_port + 2 * (self.node_id - 1)

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def sasl_port(self) -> int | None:
        return self.sasl.port + self.node_id - 1 if self.sasl else None

    @property
    def secure_port(self) -> int | None:
        return self.secure.port + self.node_id - 1 if self.secure else None

    def ports(self) -> tuple[int, ...]:
        extra = [p for p in (self.sasl_port, self.secure_port) if p]
        return (self.port, self.controller_port, *extra)

    def voters(self) -> str:
        peers = [
            KafkaNode(i, self.cluster_size, self.base_port) for i in range(1, self.cluster_size + 1)
        ]
        return ",".join(f"{p.node_id}@127.0.0.1:{p.controller_port}" for p in peers)

    def properties(self, data_dir: Path) -> dict[str, str]:
        replicated = self.cluster_size >= 3
        rf = str(min(self.cluster_size, 3))
        min_isr = "2" if replicated else "1"
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters(),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            **self._client_listeners(),
            "log.dirs": str(data_dir),
            # Internal topics must fit the cluster, or transactions and groups hang.
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            # The controller quorum must outlast a node that stalls for seconds (all of
            # the stack and its clients share a few cores; a broker's JVM starting up
            # starves the others). With the 2 s default, a stalled active controller
            # resigned again and again and never expired a bounced broker's old
            # session, so the restarted broker's registration was refused as a
            # duplicate until it gave up. The cost: a dead active controller is
            # replaced after ~10 s instead of ~2 s.
            "controller.quorum.fetch.timeout.ms": "10000",
            **self._lone_node(),
            # Two cores: keep thread pools small.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "4",
        }

    def _lone_node(self) -> dict[str, str]:
        """A single node is never fenced by its own controller. Paused with it (SIGSTOP, a
        machine asleep), the controller fences the broker the moment both resume, and
        every partition is leaderless until the broker's metadata catches up. Transaction
        markers sent in that window are skipped as if their partitions had been deleted
        (Kafka's TransactionMarkerChannelManager), so an aborted transaction's records
        stay pending and the same producer id's next commit makes them visible. With no
        other broker to take over, fencing the only one never helps.

        The session still has to end: a node killed (SIGKILL, a machine switched off)
        leaves its registration live, and its restart is refused as a duplicate until
        that session expires. So it outlasts a pause of `LONE_SESSION_S` and no more,
        and the restarted broker keeps asking for longer than that."""
        if self.cluster_size > 1:
            return {}
        return {
            "broker.session.timeout.ms": str(LONE_SESSION_S * 1000),
            "initial.broker.registration.timeout.ms": str(LONE_REGISTRATION_S * 1000),
        }

    def _client_listeners(self) -> dict[str, str]:
        """The extra client listeners' settings, overriding the PLAINTEXT-only ones above;
        inter-broker and controller traffic stays on PLAINTEXT, so no broker needs a login."""
        listeners = {}
        out: dict[str, str] = {}
        mechanisms = []
        if self.sasl is not None:
            listeners["SASL_PLAINTEXT"] = self.sasl_port
            mechanisms.append("PLAIN")
            out["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = self.sasl.jaas_config()
        if self.secure is not None:
            listeners["SASL_SSL"] = self.secure_port
            mechanisms.append(SCRAM_MECHANISM)
            scram = f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}"
            out[f"{scram}.sasl.jaas.config"] = f"{SCRAM_LOGIN} required;"
            out["listener.name.sasl_ssl.ssl.keystore.type"] = "PEM"
            out["listener.name.sasl_ssl.ssl.keystore.location"] = self.secure.keystore
        if not listeners:
            return {}
        extra = "".join(f",{name}://127.0.0.1:{port}" for name, port in listeners.items())
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}{extra}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}{extra}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            + "".join(f",{name}:{name}" for name in listeners),
            "sasl.enabled.mechanisms": ",".join(mechanisms),
            **out,
        }

    def write_config(self, layout: StackLayout) -> Path:
        data = layout.data_dir(self.name)
        data.mkdir(parents=True, exist_ok=True)
        config = layout.run / "config" / f"{self.name}.properties"
        config.parent.mkdir(parents=True, exist_ok=True)
        write_private(config, "".join(f"{k}={v}\n" for k, v in self.properties(data).items()))
        log4j = layout.run / "config" / "log4j2.properties"
        log4j.write_text(LOG4J2_PROPERTIES)
        return config

    def format_storage(self, layout: StackLayout, artifacts: Artifacts, cluster_id: str) -> None:
        """Format the log dir once; `--ignore-formatted` makes this a no-op after."""
        config = self.write_config(layout)
        result = subprocess.run(
            [
                *java_base(layout, artifacts, heap="256m"),
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"formatting {self.name}'s storage failed:\n{result.stdout}{result.stderr}\n"
                f"If the data dir belongs to another cluster, run `eos stack down --wipe`."
            )

    def argv(self, layout: StackLayout, artifacts: Artifacts, marker: str) -> list[str]:
        config = layout.run / "config" / f"{self.name}.properties"
        return [
            *java_base(layout, artifacts, heap="768m"),
            marker,
            f"-Dkafka.logs.dir={layout.run / 'logs'}",
            "kafka.Kafka",
            str(config),
        ]


def java_base(layout: StackLayout, artifacts: Artifacts, heap: str) -> list[str]:
    return [
        find_java(17, "Apache Kafka 4"),
        f"-Xmx{heap}",
        "-Xss512k",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={layout.run / 'config' / 'log4j2.properties'}",
        "-cp",
        artifacts.kafka_classpath,
    ]


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by this user only: it may hold the SASL user's password."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)  # a file from before keeps its mode through O_CREAT


def random_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding, not starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid
