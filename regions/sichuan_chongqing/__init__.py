"""The 川渝 Sichuan–Chongqing sandbox: signed resource-style REST over the shared card system."""

from regions.sichuan_chongqing.server import create_app, serve

__all__ = ["create_app", "serve"]
