"""The 川渝 Sichuan–Chongqing adapter: resource-style REST, camelCase JSON, HMAC-SHA256 signed requests."""

from adapters.sichuan_chongqing.client import SichuanChongqingAdapter, translated_errors

__all__ = ["SichuanChongqingAdapter", "translated_errors"]
