"""京津冀 Beijing–Tianjin–Hebei adapter: the region's card centre and medical-insurance centre over its native
gRPC API.

Registered under the entry-point group ``yikatong.adapters`` as ``beijing-tianjin-hebei``.
"""

from adapters.jingjinji.client import JingjinjiAdapter

__all__ = ["JingjinjiAdapter"]
