"""Region configuration and the sandboxes that stand in for each region's back-end.

A partner's sandbox builds on these (the names below are the stable surface; the rest is internal):

* :class:`~regions.config.RegionConfig`, :func:`~regions.config.load_regions`, :class:`~regions.config.ConfigError`
  — region files (``$YIKATONG_REGIONS_DIR`` lists the folders);
* :class:`~regions.backend.Backend` — what a protocol server fronts: the card system, the medical system and the
  fault knobs, built from a region file by :func:`~regions.sandbox.build_backend`;
* :data:`~regions.sandbox.SANDBOX_ENTRY_POINTS` — the entry-point group a sandbox's ``serve`` registers under;
* :func:`~regions.sandbox.start_sandbox` — a region's sandbox on free ports, as tests and ``yikatong up`` start it;
* :func:`~regions.sandbox.serve_http` — an HTTP sandbox's aiohttp application listening, as its ``serve`` returns it,
  with the TLS :func:`~regions.sandbox.server_tls` makes of the region file's ``[sandbox]`` keys;
* :func:`~regions.secrets.resolve_region` — a region file's ``env:``/``file:`` references resolved against a data
  directory, which :func:`~regions.provisioning.provision` fills with what ``yikatong up`` generates;
* :func:`~regions.seed.people_of` — the region's seeded people, to pick test cards from.
"""

from regions.backend import Backend
from regions.config import ConfigError, RegionConfig, load_regions
from regions.provisioning import provision
from regions.sandbox import (
    SANDBOX_ENTRY_POINTS,
    HttpServer,
    RunningSandbox,
    build_backend,
    serve_http,
    server_tls,
    start_sandbox,
)
from regions.secrets import resolve_region
from regions.seed import SeededPerson, people_of

__all__ = [
    "SANDBOX_ENTRY_POINTS",
    "Backend",
    "ConfigError",
    "HttpServer",
    "RegionConfig",
    "RunningSandbox",
    "SeededPerson",
    "build_backend",
    "load_regions",
    "people_of",
    "provision",
    "resolve_region",
    "serve_http",
    "server_tls",
    "start_sandbox",
]
