"""The secured stack's certificates: a CA of its own and one certificate for its servers
(every broker and the registry listen on 127.0.0.1), generated once into the stack's
data dir and kept, so that clients configured with the CA stay valid across restarts."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["TlsFiles", "ensure_tls"]

VALID_DAYS = 825  # the longest a TLS client accepts for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate (PEM): what clients trust (EOS_SSL_CA_LOCATION)."""
        return self.folder / "ca.pem"

    @property
    def server_key(self) -> Path:
        """The servers' private key, unencrypted PKCS#8 PEM, readable by this user only."""
        return self.folder / "server.key"

    @property
    def server_cert(self) -> Path:
        """The servers' certificate followed by the CA's (PEM)."""
        return self.folder / "server.pem"

    @property
    def server_keystore(self) -> Path:
        """Key then certificate chain in one PEM file: Kafka's PEM keystore."""
        return self.folder / "server-keystore.pem"

    def complete(self) -> bool:
        return all(
            p.exists() for p in (self.ca, self.server_key, self.server_cert, self.server_keystore)
        )


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def ensure_tls(folder: Path) -> TlsFiles:
    """The certificates in `folder` (private to this user), made when missing."""
    files = TlsFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if files.complete():
        return files
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("eos local stack CA"))
        .issuer_name(_name("eos local stack CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    _write(files.server_key, key_pem, private=True)
    _write(files.server_cert, chain, private=False)
    _write(files.server_keystore, key_pem + chain, private=True)
    _write(files.ca, ca.public_bytes(pem), private=False)  # last: marks the set complete
    return files
