"""YouTube-VIS AP that runs on current NumPy and survives a run without
predictions, plus identity switches and the per-frame mask AP."""
import contextlib
import io
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.optimize import linear_sum_assignment

from mmdet.evaluation.metrics import YouTubeVISMetric
from mmdet.registry import METRICS
from mmdet.structures.mask import encode_mask_results

from ...utils.deprecation import deprecated_alias

# What mmdet's YouTubeVISMetric reports by default (its ``metric_items``).
DEFAULT_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
# The per-frame mask AP's items and their place in COCOeval's ``stats``.
FRAME_ITEMS = (('mAP', 0), ('mAP_50', 1), ('mAP_75', 2))


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


def match_frame(gt_rles: Sequence[dict], pred_rles: Sequence[dict],
                iou_thr: float = 0.5) -> List[Tuple[int, int]]:
    """The (prediction, GT) index pairs of one frame matched one to one
    (Hungarian on mask IoU, any class) with a mask IoU >= ``iou_thr``."""
    if not len(gt_rles) or not len(pred_rles):
        return []
    iou = mask_utils.iou(list(pred_rles), list(gt_rles),
                         [0] * len(gt_rles))  # (P, G)
    rows, cols = linear_sum_assignment(-iou)
    return [(int(p), int(g)) for p, g in zip(rows, cols)
            if iou[p, g] >= iou_thr]


def clip_frames(data_samples) -> List[dict]:
    """Per frame of a clip's tracked samples, what the video metrics read:
    ``size`` (ori height, width), ``gts`` (the GT annotations), ``gt_ids``,
    ``gt_rles`` (their masks as compressed RLE at ``size``), ``pred_ids``,
    ``pred_rles``, ``labels`` and ``scores`` of the tracked instances."""
    frames = []
    for sample in data_samples:
        sample = sample.to_dict()
        pred = sample['pred_track_instances']
        height, width = sample['ori_shape'][:2]
        gts = sample.get('instances', [])
        frames.append(
            dict(size=(height, width),
                 gts=gts,
                 gt_ids=[ann['instance_id'] for ann in gts],
                 gt_rles=[to_rle(ann['mask'], height, width) for ann in gts],
                 pred_ids=pred['instances_id'].tolist(),
                 pred_rles=encode_mask_results(
                     pred['masks'].detach().cpu().numpy()),
                 labels=pred['labels'].tolist(),
                 scores=pred['scores'].tolist()))
    return frames


def track_frames(frames: Sequence[dict]) -> List[tuple]:
    """:func:`clip_frames`' frames as ``(gt_ids, gt_rles, pred_ids,
    pred_rles)``, what :func:`count_id_switches` takes."""
    return [(f['gt_ids'], f['gt_rles'], f['pred_ids'], f['pred_rles'])
            for f in frames]


def count_id_switches(frames: Sequence[tuple], iou_thr: float = 0.5) -> int:
    """Identity switches of one clip, as MOT counts them (CLEAR MOT's
    IDSW): in every frame the GT and predicted instances are matched one
    to one (Hungarian, mask IoU >= ``iou_thr``); a GT instance switches
    when its match has another predicted id than its previous match
    (frames where it is unmatched or absent do not reset that).

    Args:
        frames (Sequence[tuple]): Per frame ``(gt_ids, gt_rles, pred_ids,
            pred_rles)``: GT instance ids and COCO RLE masks, predicted
            track ids and RLE masks.
        iou_thr (float): Least mask IoU of a match.

    Returns:
        int: The number of switches.
    """
    last, switches = {}, 0
    for gt_ids, gt_rles, pred_ids, pred_rles in frames:
        for p, g in match_frame(gt_rles, pred_rles, iou_thr):
            gt_id, pred_id = int(gt_ids[g]), int(pred_ids[p])
            if gt_id in last and last[gt_id] != pred_id:
                switches += 1
            last[gt_id] = pred_id
    return switches


def to_rle(segmentation, height: int, width: int) -> dict:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as a
    compressed RLE of a ``height`` x ``width`` frame."""
    if isinstance(segmentation, list):  # polygons
        return mask_utils.merge(
            mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get('counts'), list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def frame_mask_ap(frames: Sequence[tuple]) -> Dict[str, float]:
    """COCO mask AP over frames taken one by one as images: the measure of
    an image model, so that a video model's detections per frame compare
    with those of the image model it started from on the same frames.

    Args:
        frames (Sequence[tuple]): Per frame ``((height, width), gts,
            preds)``: ``gts`` as ``(label, rle, ignore)`` and ``preds`` as
            ``(label, score, rle)``, labels from 0.

    Returns:
        dict: ``mAP``, ``mAP_50`` and ``mAP_75`` (COCO's, 100 detections
        per frame), rounded to 3 decimals as mmdet's metrics; 0 when
        nothing is predicted, -1 without ground truth either (COCO's
        "undefined").
    """
    images, annotations, detections = [], [], []
    for (height, width), gts, preds in frames:
        image_id = len(images) + 1
        images.append(dict(id=image_id, height=height, width=width))
        for label, rle, ignore in gts:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     category_id=int(label) + 1, segmentation=rle,
                     area=float(mask_utils.area(rle)),
                     bbox=mask_utils.toBbox(rle).tolist(),
                     iscrowd=int(bool(ignore))))
        for label, score, rle in preds:
            detections.append(
                dict(image_id=image_id, category_id=int(label) + 1,
                     segmentation=rle, score=float(score)))
    if not detections:
        value = 0. if annotations else -1.
        return {item: value for item, _ in FRAME_ITEMS}
    labels = {a['category_id'] for a in annotations + detections}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dict(images=images, annotations=annotations,
                          categories=[dict(id=i) for i in sorted(labels)])
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(detections), 'segm')
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {
        item: round(float(evaluation.stats[index]), 3)
        for item, index in FRAME_ITEMS
    }


@METRICS.register_module()
class YouTubeVISIDSwitchMetric(YouTubeVISMetric):
    """mmdet's ``YouTubeVISMetric`` with two fixes and one more number:

    - it runs on NumPy >= 1.24 (:func:`numpy_float_alias`; mmdet's raises
      ``AttributeError: module 'numpy' has no attribute 'float'`` in its
      evaluation);
    - a model that predicted nothing on the whole set gets AP 0 (-1, COCO's
      "undefined", without any ground truth either): mmdet's YouTube-VIS
      loader reads the first prediction and raises an ``IndexError``,
      which ends a training at its first validation;
    - ``id_switches``: the identity switches of all clips
      (:func:`count_id_switches`), where the GT is local (not with
      ``format_only``);
    - ``frame_segm_mAP``, ``frame_segm_mAP_50``, ``frame_segm_mAP_75``:
      COCO mask AP of the tracked instances with every frame taken as an
      image (:func:`frame_mask_ap`; local GT only). A video model started
      from an image model compares with it on the same frames this way.
    """

    def process_video(self, data_samples) -> None:
        frames = clip_frames(data_samples)
        images = [(f['size'],
                   [(ann['bbox_label'], rle, ann.get('ignore_flag', 0))
                    for ann, rle in zip(f['gts'], f['gt_rles'])],
                   list(zip(f['labels'], f['scores'], f['pred_rles'])))
                  for f in frames]
        super().process_video(data_samples)
        # Carried with the video's results, so that ranks gather them too.
        self.results[-1] = (*self.results[-1],
                            count_id_switches(track_frames(frames)), images)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        switches = sum(r[2] for r in results if len(r) > 2)
        images = [image for r in results if len(r) > 3 for image in r[3]]
        results = [r[:2] for r in results]
        preds, gts = zip(*results) if results else ((), ())
        if self.format_only or self.format_preds(preds):
            with numpy_float_alias():
                metrics = super().compute_metrics(results)
        else:
            has_gt = bool(self.format_gts(gts)['annotations'])
            items = self.metric_items or DEFAULT_ITEMS
            metrics = {
                f'segm_{item}': 0. if has_gt else -1.
                for item in items
            }
        if not self.format_only:
            metrics['id_switches'] = float(switches)
            for item, value in frame_mask_ap(images).items():
                metrics[f'frame_segm_{item}'] = value
        return metrics


#: Deprecated name of :class:`YouTubeVISIDSwitchMetric` (removed in 0.3.0).
PEPYouTubeVISMetric = deprecated_alias(YouTubeVISIDSwitchMetric,
                                       'PEPYouTubeVISMetric', METRICS)
