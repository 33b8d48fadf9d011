"""Deterministic ranking for inference (PEP's candidate selection).

Not imported by ``mmdet_pep.models.utils``' ``__init__``: only the modules
that rank with it import it.
"""
from typing import Tuple

from torch import Tensor


def topk_stable(x: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """``x.topk(k)`` along the last dim with ties broken by the lower index.

    ``torch.topk`` orders equal values arbitrarily (a plateau of a heat map
    gives many equal peaks), so the same model could keep different
    candidates on another build or thread count, and an exported graph
    (ONNX ``TopK`` puts the lower index first) could not match it. A stable
    descending sort fixes the order; ``k`` may not exceed the dim's size.

    Returns:
        tuple[Tensor, Tensor]: Values and indices, (..., k).
    """
    values, inds = x.sort(dim=-1, descending=True, stable=True)
    return values[..., :k], inds[..., :k]
