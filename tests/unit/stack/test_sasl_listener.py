"""The stack's opt-in SASL_PLAINTEXT listener: broker properties, what a user and password
may be, where they are kept, and `eos stack up --sasl-port`. No Java needed."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from eos.cli import cli
from eos.stack import artifacts as artifacts_mod
from eos.stack.artifacts import Artifacts
from eos.stack.kafka import KafkaNode, SaslPlain
from eos.stack.layout import StackLayout
from eos.stack.processes import ManagedProcess
from eos.stack.stack import Stack, StackError, StackSpec

SASL = SaslPlain(19300, "verifier", "s3cret pass!")


def test_without_sasl_the_broker_has_no_sasl_setting() -> None:
    props = KafkaNode(1, 1, 19092).properties(Path("/d"))
    assert not [k for k in props if "sasl" in k]
    assert StackSpec().sasl is None
    assert StackSpec().sasl_bootstrap_servers is None


def test_a_sasl_listener_is_added_beside_plaintext_which_stays_as_it_was() -> None:
    plain = KafkaNode(1, 1, 19092).properties(Path("/d"))
    props = KafkaNode(1, 1, 19092, SASL).properties(Path("/d"))
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_PLAINTEXT://127.0.0.1:19300"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19300"
    )
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    )
    assert props["sasl.enabled.mechanisms"] == "PLAIN"
    assert props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'user_verifier="s3cret pass!";'
    )
    # Brokers and controllers keep talking PLAINTEXT: no broker needs a login.
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["controller.listener.names"] == "CONTROLLER"
    changed = {k for k in plain if plain[k] != props[k]}
    assert changed == {"listeners", "advertised.listeners", "listener.security.protocol.map"}


def test_each_node_has_its_own_sasl_port() -> None:
    spec = StackSpec(brokers=3, kafka_port=19092, sasl=SASL)
    assert [n.sasl_port for n in spec.nodes()] == [19300, 19301, 19302]
    assert [n.ports() for n in spec.nodes()] == [
        (19092, 19093, 19300),
        (19094, 19095, 19301),
        (19096, 19097, 19302),
    ]
    assert spec.sasl_bootstrap_servers == "127.0.0.1:19300,127.0.0.1:19301,127.0.0.1:19302"
    assert spec.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("ver ifier", "pw"),
        ('a"b', "pw"),
        ("", "pw"),
        ("u", ""),
        ("u", 'quote"d'),
        ("u", "back\\slash"),
        ("u", "new\nline"),
        ("u", "nöt-ascii"),
    ],
)
def test_what_cannot_go_into_a_jaas_option_is_refused(user: str, password: str) -> None:
    with pytest.raises(ValueError, match="SASL"):
        SaslPlain(19300, user, password)


def test_the_password_is_never_in_a_repr() -> None:
    assert "s3cret" not in repr(SASL)
    assert "s3cret" not in repr(StackSpec(sasl=SASL))


def test_config_and_saved_spec_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    layout = StackLayout.create(tmp_path / "home", tmp_path / "run")
    config = KafkaNode(1, 1, 19092, SASL).write_config(layout)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert 'user_verifier="s3cret pass!"' in config.read_text()


def test_a_spec_saved_with_sasl_reads_back_and_one_saved_before_sasl_has_none(
    tmp_path: Path,
) -> None:
    spec = StackSpec(1, 19092, 18081, registry=False, sasl=SASL)
    assert StackSpec.from_saved(json.loads(json.dumps(asdict(spec)))) == spec
    older = {"brokers": 1, "kafka_port": 19092, "registry_port": 18081, "registry": True}
    assert StackSpec.from_saved({**older, "cluster_id": "x"}) == StackSpec(1, 19092, 18081)


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackLayout:
    """A run folder where nothing can be started."""
    fake = Artifacts(tmp_path / "libs", tmp_path / "apicurio")
    monkeypatch.setattr(artifacts_mod, "resolve", lambda _layout: fake)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("nothing may be started when a port is taken")

    monkeypatch.setattr(KafkaNode, "format_storage", refuse)
    monkeypatch.setattr(ManagedProcess, "start", refuse)
    return StackLayout.create(tmp_path / "home", tmp_path / "run")


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_taken_sasl_port_fails_up_before_anything_starts(
    layout: StackLayout, listener: int
) -> None:
    spec = StackSpec(1, _free_port(), registry=False, sasl=SaslPlain(listener, "u", "pw"))
    with pytest.raises(StackError, match=f"port {listener} .*--sasl-port"):
        Stack(layout, say=lambda _: None).up(spec)
    saved = (layout.run / "stack.json").read_text()
    assert stat.S_IMODE((layout.run / "stack.json").stat().st_mode) == 0o600
    assert json.loads(saved)["sasl"]["user"] == "u"


def test_up_with_a_sasl_port_needs_the_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = ["stack", "--run-dir", str(tmp_path / "run"), "up", "--sasl-port", "19300"]
    result = CliRunner().invoke(cli, run)
    assert result.exit_code == 2
    assert "EOS_STACK_SASL_PASSWORD" in result.stderr
    monkeypatch.setenv("EOS_STACK_SASL_PASSWORD", 'has"quote')
    result = CliRunner().invoke(cli, run)
    assert result.exit_code == 2
    assert "without quotes or backslashes" in result.stderr
    assert 'has"quote' not in result.output
    assert not (tmp_path / "run").exists()
