"""A development PKI for the federation (DESIGN §10): a CA, the hub's server certificate, one per participant.

Every key is ECDSA P-256. The CA signs the hub's certificate (SANs ``localhost`` and ``127.0.0.1``) and one client
certificate per participant, which names the participant twice: the URI SAN
``spiffe://yikatong/participant/<id>`` — what the hub reads — and the subject CN. Files, in one folder::

    ca.pem  ca.key                       the federation CA (ca.key never leaves the folder)
    hub.pem  hub.key                     the hub's server certificate
    participants/<id>.pem  <id>.key      one client certificate per participant

The same CA signs what the hub's links to the regions use in development (:mod:`regions.provisioning`): each
sandbox's server certificate and the hub's client certificate towards the regions. The certificates are made by
:mod:`regions.certificates`. Private keys are written owner-only (0600). A real federation runs its own CA; this one
is for development, demos and tests (``yikatong pki init``, ``yikatong pki issue``, and ``yikatong up`` on first
start).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from regions.certificates import DEV_CA_NAME, LEAF_DAYS, Authority, CertFiles

URI_PREFIX = "spiffe://yikatong/participant/"

__all__ = ["URI_PREFIX", "CertFiles", "Pki", "init", "issue", "participant_of", "participant_uri"]


@dataclass(frozen=True)
class Pki:
    """The files of a development PKI in ``folder``."""

    folder: Path

    @property
    def authority(self) -> Authority:
        """The CA of the folder, which signs every certificate of the PKI."""
        return Authority(self.folder)

    @property
    def ca(self) -> Path:
        return self.authority.ca

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
        return self.authority.exists


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
    pki.authority.ensure(DEV_CA_NAME, now=now)
    if not pki.hub.cert.exists():
        pki.authority.issue_server(pki.hub, "yikatong-hub")
    for participant_id in participant_ids:
        if not pki.participant(participant_id).cert.exists():
            issue(pki, participant_id, now=now)
    return pki


def issue(pki: Pki, participant_id: str, *, now: dt.datetime | None = None, days: int = LEAF_DAYS) -> CertFiles:
    """A client certificate for one participant, signed by the PKI's CA (an existing one is replaced)."""
    files = pki.participant(participant_id)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(participant_uri(participant_id))]
    usage = ExtendedKeyUsageOID.CLIENT_AUTH
    return pki.authority.issue(files, participant_id, sans, usage, now=now, days=days)
