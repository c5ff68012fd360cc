"""A development PKI for the federation (DESIGN §10): a CA, the hub's server certificate, one per participant.

Every key is ECDSA P-256. The CA signs the hub's certificate (SANs ``localhost`` and ``127.0.0.1``) and one client
certificate per participant, which names the participant twice: the URI SAN
``spiffe://yikatong/participant/<id>`` — what the hub reads — and the subject CN. Files, in one folder::

    ca.pem  ca.key                       the federation CA (ca.key never leaves the folder)
    hub.pem  hub.key                     the hub's server certificate
    participants/<id>.pem  <id>.key      one client certificate per participant

Private keys are written owner-only (0600). A real federation runs its own CA; this one is for development, demos
and tests (``yikatong pki init``, ``yikatong pki issue``, and ``yikatong up`` on first start).
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

URI_PREFIX = "spiffe://yikatong/participant/"
CA_DAYS, LEAF_DAYS = 3650, 825


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """The files of a development PKI in ``folder``."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def hub(self) -> CertFiles:
        return CertFiles(self.folder / "hub.pem", self.folder / "hub.key")

    def participant(self, participant_id: str) -> CertFiles:
        return CertFiles(
            self.folder / "participants" / f"{participant_id}.pem",
            self.folder / "participants" / f"{participant_id}.key",
        )

    @property
    def exists(self) -> bool:
        return self.ca.exists() and (self.folder / "ca.key").exists()


def participant_uri(participant_id: str) -> str:
    return URI_PREFIX + participant_id


def participant_of(certificate_pem: bytes) -> str | None:
    """The participant id a client certificate names in its URI SAN, None when it names none."""
    cert = x509.load_pem_x509_certificate(certificate_pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in sans.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(URI_PREFIX) and len(uri) > len(URI_PREFIX):
            return uri[len(URI_PREFIX) :]
    return None


def init(folder: Path, participant_ids: list[str], *, now: dt.datetime | None = None) -> Pki:
    """Create the CA (unless the folder has one), the hub's certificate and one certificate per participant."""
    pki = Pki(folder)
    now = now or dt.datetime.now(dt.UTC)
    if not pki.exists:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Yikatong federation development CA")])
        cert = (
            _builder(name, name, key.public_key(), now, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write(folder / "ca.key", cert_key=key)
        _write(pki.ca, cert=cert)
    if not pki.hub.cert.exists():
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        _issue(pki, pki.hub, "yikatong-hub", sans, ExtendedKeyUsageOID.SERVER_AUTH, now, LEAF_DAYS)
    for participant_id in participant_ids:
        if not pki.participant(participant_id).cert.exists():
            issue(pki, participant_id, now=now)
    return pki


def issue(pki: Pki, participant_id: str, *, now: dt.datetime | None = None, days: int = LEAF_DAYS) -> CertFiles:
    """A client certificate for one participant, signed by the PKI's CA (an existing one is replaced)."""
    files = pki.participant(participant_id)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(participant_uri(participant_id))]
    now = now or dt.datetime.now(dt.UTC)
    _issue(pki, files, participant_id, sans, ExtendedKeyUsageOID.CLIENT_AUTH, now, days)
    return files


def _issue(
    pki: Pki,
    files: CertFiles,
    common_name: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    now: dt.datetime,
    days: int,
) -> None:
    ca_key = serialization.load_pem_private_key((pki.folder / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
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
    files.cert.parent.mkdir(parents=True, exist_ok=True)
    _write(files.key, cert_key=key)
    _write(files.cert, cert=cert)


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


def _write(
    path: Path, *, cert: x509.Certificate | None = None, cert_key: ec.EllipticCurvePrivateKey | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if cert_key is not None:
        data = cert_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
