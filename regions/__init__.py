"""Region configuration and the sandboxes that stand in for each region's back-end.

A partner's sandbox builds on these (the names below are the stable surface; the rest is internal):

* :class:`~regions.config.RegionConfig`, :func:`~regions.config.load_regions`, :class:`~regions.config.ConfigError`
  — region files (``$YIKATONG_REGIONS_DIR`` lists the folders);
* :class:`~regions.backend.Backend` — what a protocol server fronts: the card system, the medical system and the
  fault knobs, built from a region file by :func:`~regions.sandbox.build_backend`;
* :data:`~regions.sandbox.SANDBOX_ENTRY_POINTS` — the entry-point group a sandbox's ``serve`` registers under;
* :func:`~regions.sandbox.start_sandbox` — a region's sandbox on free ports, as tests and ``yikatong up`` start it;
* :func:`~regions.sandbox.serve_http` — an HTTP sandbox's aiohttp application listening, as its ``serve`` returns it;
* :func:`~regions.seed.people_of` — the region's seeded people, to pick test cards from.
"""

from regions.backend import Backend
from regions.config import ConfigError, RegionConfig, load_regions
from regions.sandbox import SANDBOX_ENTRY_POINTS, HttpServer, RunningSandbox, build_backend, serve_http, start_sandbox
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
    "serve_http",
    "start_sandbox",
]
