"""长三角 Yangtze River Delta sandbox: the HTTP/JSON envelope protocol server (see ``server``)."""

from regions.yangtze_delta.server import PATH, YangtzeDeltaServer, serve

__all__ = ["PATH", "YangtzeDeltaServer", "serve"]
