"""粤桂琼 Guangdong–Guangxi–Hainan: a region added to the Yikatong federation the way a partner adds one.

Two entry points make it part of a hub (see ``pyproject.toml``): the adapter, under ``yikatong.adapters``, and
the sandbox's protocol server, under ``yikatong.sandboxes``, both named ``guangdong-guangxi-hainan``. The region's
protocol (JSON-RPC 2.0 over HTTP) is described in :mod:`yikatong_ggh.sandbox`.
"""

from yikatong_ggh.adapter import GuangdongGuangxiHainanAdapter
from yikatong_ggh.client import translated_errors
from yikatong_ggh.sandbox import create_app, serve

__all__ = ["GuangdongGuangxiHainanAdapter", "create_app", "serve", "translated_errors"]
