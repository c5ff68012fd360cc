"""长三角 Yangtze River Delta sandbox: the HTTP/JSON envelope protocol server (see ``server``)."""

from adapters.yangtze_delta.protocol import PATH
from regions.yangtze_delta.server import YangtzeDeltaServer, serve

__all__ = ["PATH", "YangtzeDeltaServer", "serve"]
