"""COCO metric that also scores crowded and isolated objects separately.

PEP targets crowds of look-alike objects, where the typical failures are a
missed object next to a found one and a second detection of an object that
was already found. :class:`CrowdCocoMetric` reports everything mmdet's
:class:`~mmdet.evaluation.CocoMetric` reports and, per task (``bbox``,
``segm``), COCO AP and recall@0.5 on the crowded and on the isolated ground
truth instances and the number of duplicate detections per image.
"""
import contextlib
import io
import os.path as osp
import tempfile
from collections import defaultdict
from typing import Dict, Iterable, Optional

import cv2
import numpy as np
from mmengine.fileio import load
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS

#: Detections per image (and class) that count, as in COCO's AP@maxDets=100.
MAX_DETS = 100
#: IoU threshold of recall@0.5 and of the duplicate count.
MATCH_IOU = 0.5


def _gt_mask(coco: COCO, ann: dict) -> np.ndarray:
    """The annotation's mask (polygons or RLE, via ``COCO.annToMask``).

    Annotations without a segmentation (e.g. ground truth converted from a
    box-only data set) fall back to their box, rounded outwards to pixels.
    """
    if ann.get('segmentation'):
        return coco.annToMask(ann).astype(bool)
    img = coco.imgs[ann['image_id']]
    mask = np.zeros((img['height'], img['width']), bool)
    x, y, w, h = ann['bbox']
    mask[int(np.floor(y)):int(np.ceil(y + h)),
         int(np.floor(x)):int(np.ceil(x + w))] = True
    return mask


def crowded_instances(coco: COCO,
                      crowd_dist: int = 2,
                      img_ids: Optional[Iterable[int]] = None,
                      cat_ids: Optional[Iterable[int]] = None
                      ) -> Dict[int, bool]:
    """Whether each non-iscrowd ground truth instance is crowded.

    An instance is *crowded* when its mask, dilated by ``crowd_dist``
    pixels with a ``(2 * crowd_dist + 1)``-square structuring element
    (every pixel at Chebyshev distance <= ``crowd_dist`` from the mask),
    shares a pixel with the mask of another non-iscrowd instance of the
    same category in the same image; otherwise it is *isolated*. So with
    ``crowd_dist=0`` only overlapping masks are crowded, with 1 also masks
    that touch (8-neighbourhood), with 2 also masks one pixel apart.
    Instances of other categories and ``iscrowd`` regions never make an
    instance crowded. An empty mask is isolated.

    Args:
        coco (COCO): Ground truth.
        crowd_dist (int): Dilation radius in pixels, >= 0. Defaults to 2.
        img_ids (Iterable[int], optional): Images to look at; all if None.
        cat_ids (Iterable[int], optional): Categories to look at; all if
            None.

    Returns:
        dict[int, bool]: Annotation id -> crowded, for every non-iscrowd
        annotation of the given images and categories.
    """
    if int(crowd_dist) != crowd_dist or crowd_dist < 0:
        raise ValueError(f'crowd_dist must be an integer >= 0, got '
                         f'{crowd_dist!r}')
    d = int(crowd_dist)
    kernel = np.ones((2 * d + 1, 2 * d + 1), np.uint8)
    img_ids = coco.getImgIds() if img_ids is None else img_ids
    cat_set = set(coco.getCatIds() if cat_ids is None else cat_ids)
    flags = {}
    for img_id in img_ids:
        by_cat = defaultdict(list)
        for ann in coco.imgToAnns.get(img_id, []):
            if not ann.get('iscrowd', 0) and ann['category_id'] in cat_set:
                by_cat[ann['category_id']].append(ann)
        for anns in by_cat.values():
            if len(anns) == 1:  # nothing of its category to be near
                flags[anns[0]['id']] = False
                continue
            masks = [_gt_mask(coco, ann) for ann in anns]
            # Per pixel, how many instances of the category cover it: minus
            # an instance's own mask, the other instances (even where
            # masks overlap).
            cover = np.sum(masks, axis=0, dtype=np.int32)
            height, width = cover.shape
            for ann, mask in zip(anns, masks):
                ys, xs = np.nonzero(mask)
                if not len(ys):
                    flags[ann['id']] = False
                    continue
                # The dilation stays within d pixels of the mask's box.
                y0, y1 = max(ys.min() - d, 0), min(ys.max() + d + 1, height)
                x0, x1 = max(xs.min() - d, 0), min(xs.max() + d + 1, width)
                own = mask[y0:y1, x0:x1].astype(np.uint8)
                # cv2 pads dilation with the neutral value: nothing grows in
                # from outside the crop.
                near = cv2.dilate(own, kernel) > 0
                others = cover[y0:y1, x0:x1] - own > 0
                flags[ann['id']] = bool(np.any(near & others))
    return flags


class SubsetCOCOeval(COCOeval):
    """pycocotools' COCOeval on a subset of the ground truth.

    ``evaluate_subset(ignore_ids)`` evaluates with the ground truth
    instances of ``ignore_ids`` *ignored* (COCO's ``ignore``): a detection
    that matches one of them is neither a true nor a false positive, and
    they do not count towards recall. pycocotools' ``_prepare`` overwrites
    every ``gt['ignore']`` with ``gt['iscrowd']``, so an ``ignore`` written
    into the annotations beforehand is lost; ``_prepare`` is therefore
    extended to set the flag *after* pycocotools has prepared the ground
    truth, on copies of the annotation dicts (pycocotools' ``_prepare``
    works on the COCO object's own dicts, and ``evaluateImg`` then writes
    ``_ignore`` into them; copies keep the flags of one subset out of the
    annotation file's COCO object and out of the next evaluation).
    ``evaluateImg`` derives ``_ignore`` from ``ignore`` (and the area
    range), and both matching and accumulation then work exactly as for
    COCO's own ignored instances.

    One addition: COCO's greedy matching lets each ignored instance absorb
    one detection only; a second detection of it would be unmatched and so
    a false positive of the subset, although it hit an object outside the
    subset. Like COCO ignores unmatched detections outside the evaluated
    area range, a detection that stays unmatched at an IoU threshold but
    overlaps an ignored instance at that threshold is ignored too. So
    every detection on an object outside the subset is left out, and
    detections on the background are false positives in every subset.

    IoUs are computed once (on the first ``evaluate``) and reused for the
    other subsets of the same detections.
    """

    def __init__(self, cocoGt=None, cocoDt=None, iouType='segm'):  # noqa: N803
        super().__init__(cocoGt, cocoDt, iouType)
        self.ignore_ids = frozenset()
        self._iou_cache = {}

    def evaluate_subset(self, ignore_ids: Iterable[int] = ()) -> None:
        """``evaluate()`` and ``accumulate()`` with ``ignore_ids`` (and
        iscrowd regions) ignored, pycocotools' console output muted."""
        self.ignore_ids = frozenset(ignore_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            self.evaluate()
            self.accumulate()

    def _prepare(self):
        super()._prepare()
        # Here, after pycocotools has set gt['ignore'] = iscrowd: add the
        # subset's ignored instances, on copies (see the class docstring).
        for key, gts in self._gts.items():
            self._gts[key] = [
                dict(gt, ignore=bool(gt['ignore'])
                     or gt['id'] in self.ignore_ids) for gt in gts
            ]

    def computeIoU(self, imgId, catId):  # noqa: N802,N803
        key = (imgId, catId)
        if key not in self._iou_cache:
            self._iou_cache[key] = super().computeIoU(imgId, catId)
        return self._iou_cache[key]

    def evaluateImg(self, imgId, catId, aRng, maxDet):  # noqa: N802,N803
        result = super().evaluateImg(imgId, catId, aRng, maxDet)
        if result is None or not self.ignore_ids or not result['dtIds']:
            return result
        outside = np.array(
            [gt['id'] in self.ignore_ids for gt in self._gts[imgId, catId]],
            bool)
        if not outside.any():
            return result
        # Rows: the detections in the order of result['dtIds'] (both sorted
        # by score, mergesort, top maxDets[-1]); columns: self._gts order.
        ious = np.asarray(self.ious[imgId, catId])[:, outside]
        best = ious.max(axis=1)
        for t, thr in enumerate(self.params.iouThrs):
            # pycocotools matches at IoU >= min(thr, 1 - 1e-10).
            hit_outside = best >= min(thr, 1 - 1e-10)
            unmatched = result['dtMatches'][t] == 0
            result['dtIgnore'][t] |= unmatched & hit_outside
        return result


@METRICS.register_module()
class CrowdCocoMetric(CocoMetric):
    """CocoMetric plus AP and recall on crowded and on isolated objects and
    duplicate detections.

    Everything :class:`~mmdet.evaluation.CocoMetric` reports is reported
    unchanged; for each of ``bbox`` and ``segm`` in ``metric`` (boxes are
    matched by box IoU, masks by mask IoU), and with ``coco/`` in front as
    for CocoMetric's keys:

    - ``{task}_crowded_mAP``, ``{task}_isolated_mAP``: COCO AP
      (mean over the IoU thresholds ``iou_thrs``, by default 0.5:0.05:0.95,
      the 101 recall points and the categories that have instances of the
      subset; at most 100 detections per image and category) with the
      ground truth of the *other* subset ignored: a detection that matches
      (or, unmatched, overlaps at the threshold) an instance of the other
      subset is neither a true nor a false positive; detections on the
      background are false positives in both subsets (see
      :class:`SubsetCOCOeval`). iscrowd regions are ignored as in COCO and
      belong to neither subset. -1 when the subset is empty.
    - ``{task}_crowded_recall50``, ``{task}_isolated_recall50``: the
      fraction of the subset's instances that COCO's greedy matching (by
      score, each detection to the best-IoU unmatched instance, subset
      instances first) matches at IoU >= 0.5 to one of the top 100
      detections of their image and category. -1 when the subset is empty.
    - ``{task}_duplicates_per_img``: among each image's top 100 detections
      (by score, over all categories), the number of *duplicates*,
      averaged over the evaluated images: detections that COCO's greedy
      matching at IoU 0.5 (all ground truth, only iscrowd ignored) leaves
      unmatched although they overlap a non-iscrowd instance of their
      category at IoU >= 0.5; that is, every object they hit was already
      matched by a higher-scored detection.
    - ``num_crowded``, ``num_isolated``: the number of non-iscrowd ground
      truth instances of the evaluated images and categories in each
      subset.

    An instance is *crowded* when its mask, dilated by ``crowd_dist``
    pixels (a ``(2 * crowd_dist + 1)``-square structuring element, i.e.
    every pixel at Chebyshev distance <= ``crowd_dist``), shares a pixel
    with the mask of another non-iscrowd instance of the same category in
    the same image (touching or overlapping); otherwise it is *isolated*
    (see :func:`crowded_instances`). Masks come from the annotation file
    (polygons or RLE, decoded with ``COCO.annToMask``), also for the
    ``bbox`` task; an annotation without segmentation uses its box.

    Values are rounded to three decimals, as CocoMetric's; a table of them
    is logged.

    Args:
        crowd_dist (int): Dilation radius in pixels that makes two
            instances neighbours. Defaults to 2.
        *args, **kwargs: CocoMetric's arguments. ``iou_thrs`` must include
            0.5.

    Example:
        >>> val_evaluator = dict(
        ...     type='CrowdCocoMetric',
        ...     ann_file='data/coco/annotations/instances_val2017.json',
        ...     metric=['bbox', 'segm'])
    """
    SUBSETS = ('crowded', 'isolated')

    def __init__(self, *args, crowd_dist: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if int(crowd_dist) != crowd_dist or crowd_dist < 0:
            raise ValueError(f'crowd_dist must be an integer >= 0, got '
                             f'{crowd_dist!r}')
        self.crowd_dist = int(crowd_dist)
        iou_thrs = np.atleast_1d(np.asarray(self.iou_thrs, dtype=float))
        if not np.isclose(iou_thrs, MATCH_IOU).any():
            raise ValueError(f'CrowdCocoMetric needs {MATCH_IOU} in iou_thrs '
                             f'(recall@0.5, duplicates), got {self.iou_thrs}')
        self._crowd_cache = None  # (COCO object, crowd_dist, flags)

    def crowd_flags(self) -> Dict[int, bool]:
        """Annotation id -> crowded, for the evaluated images and
        categories; computed once per ground truth and ``crowd_dist``."""
        cache = self._crowd_cache
        if (cache is None or cache[0] is not self._coco_api
                or cache[1] != self.crowd_dist):
            flags = crowded_instances(self._coco_api, self.crowd_dist,
                                      self.img_ids, self.cat_ids)
            self._crowd_cache = cache = (self._coco_api, self.crowd_dist,
                                         flags)
        return cache[2]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's metrics, then the crowded/isolated ones."""
        eval_results = super().compute_metrics(results)
        tasks = [m for m in self.metrics if m in ('bbox', 'segm')]
        if self.format_only or not tasks:
            return eval_results
        logger: MMLogger = MMLogger.get_current_instance()

        flags = self.crowd_flags()
        subsets = dict(
            crowded={i for i, c in flags.items() if c},
            isolated={i for i, c in flags.items() if not c})
        extra = dict()
        rows = []
        _, preds = zip(*results)
        with tempfile.TemporaryDirectory() as tmp_dir:
            # CocoMetric's own conversion of the predictions, as it
            # evaluates them (it has deleted its files by now).
            result_files = self.results2json(preds, osp.join(tmp_dir, 'r'))
            for task in tasks:
                predictions = load(result_files[task])
                if not predictions:
                    logger.error('The testing results of the whole dataset '
                                 'is empty: no crowded/isolated metrics.')
                    break
                if task == 'segm':  # as CocoMetric: mask areas, not boxes
                    for x in predictions:
                        x.pop('bbox')
                task_results = self._evaluate_task(
                    self._coco_api.loadRes(predictions), task, subsets)
                extra.update(
                    (f'{task}_{key}', value)
                    for key, value in task_results.items())
                rows.append([task] + [
                    f'{task_results[k]:.3f}' for k in (
                        'crowded_mAP', 'crowded_recall50', 'isolated_mAP',
                        'isolated_recall50', 'duplicates_per_img')
                ])
        extra['num_crowded'] = len(subsets['crowded'])
        extra['num_isolated'] = len(subsets['isolated'])
        table = AsciiTable([[
            'task', 'crowded mAP', 'crowded R@0.5', 'isolated mAP',
            'isolated R@0.5', 'duplicates/img'
        ]] + rows)
        logger.info(f'crowd_dist={self.crowd_dist}: '
                    f'{extra["num_crowded"]} crowded, '
                    f'{extra["num_isolated"]} isolated instances\n' +
                    table.table)
        eval_results.update(extra)
        return eval_results

    def _evaluate_task(self, coco_dt: COCO, task: str,
                       subsets: Dict[str, set]) -> Dict[str, float]:
        """Subset AP and recall@0.5, duplicates per image, for one task."""
        coco_eval = SubsetCOCOeval(self._coco_api, coco_dt, task)
        params = coco_eval.params
        params.catIds = self.cat_ids
        params.imgIds = self.img_ids
        params.iouThrs = np.atleast_1d(np.asarray(self.iou_thrs, float))
        params.maxDets = [1, 10, MAX_DETS]
        # Only the 'all' area range: the subsets are not split by size.
        params.areaRng = [params.areaRng[0]]
        params.areaRngLbl = [params.areaRngLbl[0]]
        t50 = int(np.flatnonzero(np.isclose(params.iouThrs, MATCH_IOU))[0])

        out = dict()
        for name in self.SUBSETS:
            others = set().union(*(ids for other, ids in subsets.items()
                                   if other != name))
            coco_eval.evaluate_subset(others)
            with contextlib.redirect_stdout(io.StringIO()):
                coco_eval.summarize()
            # stats[0]: AP at IoU 0.5:0.95, all areas, maxDets 100, as
            # CocoMetric's mAP.
            out[f'{name}_mAP'] = round(float(coco_eval.stats[0]), 3)
            matched = total = 0
            for e in coco_eval.evalImgs:
                if e is None:
                    continue
                counted = np.asarray(e['gtIgnore']) == 0
                total += int(counted.sum())
                matched += int((counted & (e['gtMatches'][t50] > 0)).sum())
            out[f'{name}_recall50'] = round(matched / total,
                                            3) if total else -1.0

        coco_eval.evaluate_subset(())  # everything, only iscrowd ignored
        out['duplicates_per_img'] = round(
            self._duplicates_per_img(coco_eval, t50), 3)
        return out

    @staticmethod
    def _duplicates_per_img(coco_eval: SubsetCOCOeval, t50: int) -> float:
        per_img = defaultdict(list)  # img id -> [(score, is duplicate)]
        for e in coco_eval.evalImgs:
            if e is None or not e['dtIds']:
                continue
            key = (e['image_id'], e['category_id'])
            gts = coco_eval._gts[key]
            real = np.array([not gt['iscrowd'] for gt in gts], bool)
            if real.any():
                # Same row order as e['dtIds'], columns in _gts order.
                ious = np.asarray(coco_eval.ious[key])[:, real]
                hits = ious.max(axis=1) >= MATCH_IOU
            else:
                hits = np.zeros(len(e['dtIds']), bool)
            dup = (hits & (e['dtMatches'][t50] == 0)
                   & ~np.asarray(e['dtIgnore'][t50], bool))
            per_img[e['image_id']].extend(zip(e['dtScores'], dup.tolist()))
        total = 0
        for dets in per_img.values():
            # A detection's match depends only on higher-scored ones of its
            # category, so the per-category matching holds among the
            # image's top MAX_DETS too.
            dets.sort(key=lambda sd: -sd[0])
            total += sum(is_dup for _, is_dup in dets[:MAX_DETS])
        num_imgs = len(coco_eval.params.imgIds)
        return total / num_imgs if num_imgs else 0.0
