"""Development X.509: a certificate authority kept in a folder, and the leaf certificates it signs.

Every key is ECDSA P-256. The CA is ``ca.pem`` and ``ca.key`` in its folder (the key never leaves it); a leaf is
a server certificate (DNS and IP names, ``serverAuth``) or a client certificate (a URI name, ``clientAuth``).
Private keys are written owner-only (0600). The federation's development PKI (:mod:`gateway.pki`) and the
sandboxes' certificates (:mod:`regions.provisioning`) are made with it; a real deployment runs its own CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS, LEAF_DAYS = 3650, 825
DEV_CA_NAME = "Yikatong federation development CA"
LOCAL_NAMES = ("localhost", "127.0.0.1")
"""What a server certificate for this machine names: the loopback name and address."""


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path

    @property
    def exists(self) -> bool:
        """Whether both files are there."""
        return self.cert.exists() and self.key.exists()


@dataclass(frozen=True)
class Authority:
    """A development CA whose files are in ``folder``."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate (PEM): what a peer trusts."""
        return self.folder / "ca.pem"

    @property
    def exists(self) -> bool:
        """Whether the CA's certificate and key are there."""
        return self.ca.exists() and (self.folder / "ca.key").exists()

    def ensure(self, common_name: str, *, now: dt.datetime | None = None) -> Authority:
        """Create the CA unless the folder has one."""
        if self.exists:
            return self
        now = now or dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            _builder(name, name, key.public_key(), now, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        write_key(self.folder / "ca.key", key)
        write_cert(self.ca, cert)
        return self

    def issue_server(self, files: CertFiles, common_name: str, names: tuple[str, ...] = LOCAL_NAMES) -> CertFiles:
        """A server certificate for host ``names`` (DNS names or IP addresses); an existing one is replaced."""
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        return self.issue(files, common_name, sans, ExtendedKeyUsageOID.SERVER_AUTH)

    def issue_client(self, files: CertFiles, common_name: str, uri: str, *, days: int = LEAF_DAYS) -> CertFiles:
        """A client certificate naming ``uri`` (its URI SAN); an existing one is replaced."""
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
        return self.issue(files, common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH, days=days)

    def issue(
        self,
        files: CertFiles,
        common_name: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        *,
        now: dt.datetime | None = None,
        days: int = LEAF_DAYS,
    ) -> CertFiles:
        """A leaf certificate signed by the CA, with its new key, written to ``files``."""
        now = now or dt.datetime.now(dt.UTC)
        ca_key = serialization.load_pem_private_key((self.folder / "ca.key").read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.ca.read_bytes())
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            _builder(name, ca_cert.subject, key.public_key(), now, days)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_key(files.key, key)
        write_cert(files.cert, cert)
        return files


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """A private key as PKCS#8 PEM, owner-only, replacing the file atomically."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, data)


def write_private(path: Path, data: bytes) -> None:
    """Bytes only the owner may read, replacing the file atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder is the owner's alone
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    """A certificate as PEM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
