"""The 长三角 Yangtze River Delta adapter (HTTP/JSON envelope protocol), registered as ``yangtze-delta``."""

from adapters.yangtze_delta.adapter import YangtzeDeltaAdapter

__all__ = ["YangtzeDeltaAdapter"]
