"""京津冀 Beijing–Tianjin–Hebei sandbox: the card centre's native gRPC API (``jingjinji.v1``)."""

from regions.jingjinji.server import CardCenter, JingjinjiServer, serve

__all__ = ["CardCenter", "JingjinjiServer", "serve"]
