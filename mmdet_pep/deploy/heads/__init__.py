"""Static-shape post-processing of each exportable head, by head type.

Each entry names ``postprocess(detector, feats, img_h, img_w)`` ->
``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,), ``masks`` (N, H, W)
bool of image 0 at the input size (see :class:`..model.DeployModel`). The
modules are imported on first use.
"""
import importlib
from collections.abc import Mapping
from typing import Callable, Iterator

_ENTRIES = {
    'PEPHead': 'pep:pep_postprocess',
    'SOLOV2Head': 'solov2:solov2_postprocess',
    'CondInstMaskHead': 'condinst:condinst_postprocess',
    'EmbedMaskHead': 'fcos_mask:embedmask_postprocess',
    'SipMaskHead': 'fcos_mask:sipmask_postprocess',
    'SpatialEmbHead': 'spatial_emb:spatial_emb_postprocess',
}


class _Heads(Mapping):
    """Head type -> post-processing function, imported lazily."""

    def __getitem__(self, name: str) -> Callable:
        module, func = _ENTRIES[name].split(':')
        return getattr(importlib.import_module(f'{__name__}.{module}'), func)

    def __iter__(self) -> Iterator[str]:
        return iter(_ENTRIES)

    def __len__(self) -> int:
        return len(_ENTRIES)


DEPLOY_HEADS = _Heads()

__all__ = ['DEPLOY_HEADS']
