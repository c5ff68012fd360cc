"""TLS on the link to a region, read from an adapter's options the same way by every adapter.

======================  ====================================================================================
option                  meaning (each a PEM, in the region file usually a ``file:`` reference)
======================  ====================================================================================
``tls_ca``              the CA bundle that vouches for the region's server certificate; without it, the
                        system's trusted roots
``tls_cert``            the hub's client certificate, where the region asks for one (mutual TLS) …
``tls_key``             … and its private key; the two go together
======================  ====================================================================================

An HTTP adapter speaks TLS when its endpoint is ``https://…`` (:class:`adapters.http.HttpSession` takes
:meth:`ClientTls.ssl_context`); a gRPC adapter builds its channel credentials from the same three PEMs. The server
certificate is always verified, host name included: there is no option to turn that off.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ClientTls:
    """What the hub presents and trusts on one region's link.

    Attributes:
        ca: PEM of the CAs that may sign the region's server certificate ("" = the system's roots).
        cert: PEM of the hub's client certificate ("" = none presented).
        key: PEM of its private key.
    """

    ca: str = ""
    cert: str = ""
    key: str = field(default="", repr=False)

    @classmethod
    def from_options(cls, options: Mapping[str, str], region_id: str) -> ClientTls:
        """The TLS options of a region's adapter settings.

        Raises:
            ValueError: only one of ``tls_cert`` and ``tls_key`` is given.
        """
        tls = cls(options.get("tls_ca", ""), options.get("tls_cert", ""), options.get("tls_key", ""))
        if bool(tls.cert) != bool(tls.key):
            raise ValueError(f"region {region_id}: adapter options tls_cert and tls_key go together")
        return tls

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: TLS 1.2 or later, the server's certificate and host name verified."""
        context = ssl.create_default_context(cadata=self.ca or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert:
            load_cert_chain(context, self.cert, self.key)
        return context


def load_cert_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    """Load a certificate chain and its key given as PEM text.

    Python's ``ssl`` reads a chain only from files, so both are written for the moment it takes into a private
    (owner-only) temporary folder, removed at once.
    """
    with tempfile.TemporaryDirectory(prefix="yikatong-tls-") as folder:
        cert_file, key_file = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        for path, text in ((cert_file, cert), (key_file, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text)
        context.load_cert_chain(cert_file, key_file)
