"""A development data directory: what the sandboxes and the hub's links to them need, generated, never shipped.

The shipped region files and ``config/hub.toml`` hold only references (:mod:`regions.secrets`) into the data
directory; :func:`provision` — run by ``yikatong up``, ``yikatong sandbox serve``, the conformance suite and the
tests — writes what they name, keeping whatever is already there::

    pki/ca.pem  pki/ca.key                      the development CA (the federation's, see gateway.pki)
    pki/hub-client.pem  pki/hub-client.key      the hub's client certificate towards the regions
                                                (URI SAN spiffe://yikatong/hub)
    pki/sandboxes/<region-id>.pem  .key         each sandbox's server certificate (localhost, 127.0.0.1)
    secrets/…                                   every other missing file a region's [options] reference names
                                                inside the data directory: 256 random bits, base64url
                                                (e.g. secrets/sichuan-chongqing.secret)
    secrets/ecard-platform.key  .pub            the sandbox e-card platform's Ed25519 key (regions.ecard)

A region file references them with the same names: ``tls_ca = "file:pki/ca.pem"``, ``tls_cert =
"file:pki/hub-client.pem"``, ``tls_key = "file:pki/hub-client.key"`` in ``[options]``; ``tls_cert =
"file:pki/sandboxes/<region-id>.pem"``, ``tls_key = …``, ``tls_client_ca = "file:pki/ca.pem"`` in ``[sandbox]``.
Every private key and secret is owner-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from regions import ecard
from regions.certificates import DEV_CA_NAME, Authority, CertFiles
from regions.config import RegionConfig
from regions.secrets import generate_secret, reference_path

HUB_CLIENT_URI = "spiffe://yikatong/hub"
"""What the hub's client certificate towards the regions names (URI SAN)."""
TLS_OPTIONS = ("tls_ca", "tls_cert", "tls_key")


@dataclass(frozen=True)
class Links:
    """The TLS files of the region links in a data directory."""

    data_dir: Path

    @property
    def authority(self) -> Authority:
        """The development CA, in ``pki/``."""
        return Authority(self.data_dir / "pki")

    @property
    def ca(self) -> Path:
        """The CA that signed every sandbox's certificate and the hub's client certificate."""
        return self.authority.ca

    @property
    def hub_client(self) -> CertFiles:
        """The hub's client certificate towards the regions."""
        return CertFiles(self.data_dir / "pki" / "hub-client.pem", self.data_dir / "pki" / "hub-client.key")

    def sandbox(self, region_id: str) -> CertFiles:
        """A region's sandbox's server certificate."""
        folder = self.data_dir / "pki" / "sandboxes"
        return CertFiles(folder / f"{region_id}.pem", folder / f"{region_id}.key")


def provision(
    data_dir: Path, regions: Iterable[RegionConfig], *, ecard_key: Ed25519PrivateKey | None = None
) -> list[Path]:
    """Write what the data directory lacks for these regions (the module docstring's list).

    Args:
        data_dir: the data directory.
        regions: the regions whose sandbox certificates and secrets to make.
        ecard_key: the e-card platform key to keep (tests pass the well-known one); default: a new one, unless
            the folder has one.

    Returns:
        The files written, secrets first.
    """
    written: list[Path] = []
    links = Links(data_dir)
    links.authority.ensure(DEV_CA_NAME)
    if not links.hub_client.exists:
        written.append(links.authority.issue_client(links.hub_client, "yikatong-hub", HUB_CLIENT_URI).cert)
    for region in regions:
        files = links.sandbox(region.region_id)
        if not files.exists:
            written.append(links.authority.issue_server(files, f"{region.region_id} sandbox").cert)
        written[:0] = _secrets(data_dir, region)
    if ecard_key is not None or ecard.load_platform_key(data_dir) is None:
        ecard.save_platform_key(data_dir, ecard_key or Ed25519PrivateKey.generate())
        written.append(data_dir / ecard.PLATFORM_KEY_FILE)
    return written


def _secrets(data_dir: Path, region: RegionConfig) -> list[Path]:
    """The secret files a region's options reference inside the data directory and that are missing, made."""
    made = []
    for key, value in region.options.items():
        path = reference_path(value, data_dir)
        if key in TLS_OPTIONS or path is None or not path.resolve().is_relative_to(data_dir.resolve()):
            continue
        if generate_secret(path):
            made.append(path)
    return made
