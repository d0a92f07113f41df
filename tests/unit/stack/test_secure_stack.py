"""`eos stack up --secure`'s pieces, without Java: the SASL_SSL listener's broker
properties, the certificates, the registry's HTTPS and basic-auth settings, the client
settings printed and kept, and private folders. The whole runs in
tests/integration/ledger/test_secure.py."""

from __future__ import annotations

import ipaddress
import json
import stat
from dataclasses import asdict
from pathlib import Path

from cryptography import x509

from eos.config import SecuritySettings
from eos.stack.kafka import KafkaNode, SecureListener
from eos.stack.layout import StackLayout
from eos.stack.registry import RegistryNode
from eos.stack.stack import StackSpec, secure_client_env
from eos.stack.tls import ensure_tls

SECURE = SecureListener(19400, "svc", "pw-0123456789", "/tls/server-keystore.pem")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_sasl_ssl_listener_with_scram_and_the_pem_keystore_beside_plaintext() -> None:
    props = KafkaNode(1, 1, 19092, secure=SECURE).properties(Path("/d"))
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:19400")
    assert props["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19400"
    )
    assert props["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == SECURE.keystore
    # No password in the broker's files: the credential is stored in the cluster.
    assert not [v for v in props.values() if SECURE.password in v]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_each_node_has_its_own_secure_port_and_the_spec_survives_a_save() -> None:
    spec = StackSpec(brokers=3, kafka_port=19092, secure=SECURE)
    assert [n.secure_port for n in spec.nodes()] == [19400, 19401, 19402]
    assert spec.secure_bootstrap_servers == "127.0.0.1:19400,127.0.0.1:19401,127.0.0.1:19402"
    assert StackSpec.from_saved(json.loads(json.dumps(asdict(spec)))) == spec
    assert "pw-0123456789" not in repr(spec)


def test_the_certificates_are_made_once_for_127_0_0_1_and_the_keys_are_private(
    tmp_path: Path,
) -> None:
    files = ensure_tls(tmp_path / "tls")
    assert _mode(files.folder) == 0o700
    assert _mode(files.server_key) == 0o600 and _mode(files.server_keystore) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    chain = x509.load_pem_x509_certificates(files.server_cert.read_bytes())
    assert chain[0].issuer == ca.subject and chain[1] == ca
    chain[0].verify_directly_issued_by(ca)
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    keystore = files.server_keystore.read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")
    assert keystore.count("BEGIN CERTIFICATE") == 2
    before = files.ca.read_bytes()
    ensure_tls(tmp_path / "tls")
    assert files.ca.read_bytes() == before  # clients' CA stays valid across restarts


def test_the_secure_registry_takes_https_and_basic_auth_from_a_private_file(
    tmp_path: Path,
) -> None:
    spec = StackSpec(registry_port=19081, secure=SECURE)
    node = spec.registry_node()
    assert node.url == "https://127.0.0.1:19081/apis/ccompat/v7"
    layout = StackLayout.create(tmp_path, tmp_path / "run")
    node.write_config(layout)
    path = layout.run / "config" / "application.properties"
    assert _mode(path) == 0o600
    text = path.read_text()
    assert "quarkus.http.insecure-requests=disabled" in text
    assert "quarkus.security.users.embedded.users.svc=pw-0123456789" in text
    assert "quarkus.http.auth.permission.everything.policy=authenticated" in text
    StackSpec(registry_port=19081).registry_node().write_config(layout)
    assert not path.exists()  # a plain stack's registry is not left with the old settings
    assert RegistryNode(19081).url.startswith("http://")


def test_the_client_settings_reach_both_and_load_as_the_processor_reads_them() -> None:
    env = secure_client_env(StackSpec(registry_port=19081, secure=SECURE))
    assert env["EOS_BOOTSTRAP_SERVERS"] == "127.0.0.1:19400"
    assert env["EOS_SSL_CA_LOCATION"] == "/tls/ca.pem"
    connection = ("EOS_BOOTSTRAP_SERVERS", "EOS_SCHEMA_REGISTRY_URL")
    fields = {k.removeprefix("EOS_").lower(): v for k, v in env.items() if k not in connection}
    security = SecuritySettings.model_validate(fields)
    assert security.client_config() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "pw-0123456789",
        "ssl.ca.location": "/tls/ca.pem",
    }
    assert security.registry_config() == {
        "ssl.ca.location": "/tls/ca.pem",
        "basic.auth.user.info": "svc:pw-0123456789",
    }


def test_the_run_folder_is_private(tmp_path: Path) -> None:
    layout = StackLayout.create(tmp_path / "home", tmp_path / "run")
    layout.ensure()
    for folder in (layout.run, layout.run / "data", layout.run / "logs"):
        assert _mode(folder) == 0o700
