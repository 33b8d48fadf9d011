"""YouTube-VIS AP that runs on current NumPy and survives a run without
predictions."""
import contextlib
from typing import Dict, Iterator, List

import numpy as np

from mmdet.evaluation.metrics import YouTubeVISMetric
from mmdet.registry import METRICS

# What mmdet's YouTubeVISMetric reports by default (its ``metric_items``).
DEFAULT_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


@contextlib.contextmanager
def numpy_float_alias() -> Iterator[None]:
    """``np.float`` (= ``float``) while the block runs.

    mmdet 3.3's vendored YouTube-VIS evaluation
    (``mmdet/evaluation/functional/ytviseval.py``, ``accumulate``) casts
    with ``np.float``, an alias NumPy removed in 1.24; this project needs
    NumPy 2. The alias is put back only where it is missing and removed
    afterwards, so nothing else sees it.
    """
    added = not hasattr(np, 'float') or 'float' not in np.__dict__
    if added:
        np.float = float
    try:
        yield
    finally:
        if added:
            del np.float


@METRICS.register_module()
class PEPYouTubeVISMetric(YouTubeVISMetric):
    """mmdet's ``YouTubeVISMetric`` with two fixes:

    - it runs on NumPy >= 1.24 (:func:`numpy_float_alias`; mmdet's raises
      ``AttributeError: module 'numpy' has no attribute 'float'`` in its
      evaluation);
    - a model that predicted nothing on the whole set gets AP 0 (-1, COCO's
      "undefined", without any ground truth either): mmdet's YouTube-VIS
      loader reads the first prediction and raises an ``IndexError``,
      which ends a training at its first validation.
    """

    def compute_metrics(self, results: List) -> Dict[str, float]:
        preds, gts = zip(*results) if results else ((), ())
        if self.format_only or self.format_preds(preds):
            with numpy_float_alias():
                return super().compute_metrics(results)
        has_gt = bool(self.format_gts(gts)['annotations'])
        items = self.metric_items or DEFAULT_ITEMS
        return {f'segm_{item}': 0. if has_gt else -1. for item in items}
