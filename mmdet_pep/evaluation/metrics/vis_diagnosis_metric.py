"""A diagnosis of video instance segmentation results: how much of the gap
between the per-frame and the video AP is the tracker's, and how much the
detector's.

:class:`YouTubeVISDiagnosisMetric` is :class:`YouTubeVISIDSwitchMetric`
plus the detector's per-frame recall and, as an option, the VIS AP of the
same detections under a perfect association. It is a separate metric, so
that the protocol's metric (and the result files judged by its code) stay
as they are; ``tools/analysis_tools/same_weights.py`` runs both on one
checkpoint (see ``docs/experiments/video.md``).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from pycocotools import mask as mask_utils

from mmdet.registry import METRICS

from .youtube_vis_metric import (YouTubeVISIDSwitchMetric, clip_frames,
                                 match_frame, track_frames)


def frame_recall(frames: Sequence[tuple],
                 iou_thr: float = 0.5) -> Tuple[int, int]:
    """How many GT instances of a clip's frames a kept prediction finds:
    per frame, GT and predictions matched one to one (Hungarian on mask
    IoU, any class), a match counting at IoU >= ``iou_thr``.

    Args:
        frames (Sequence[tuple]): Per frame ``(gt_ids, gt_rles, pred_ids,
            pred_rles)`` (as :func:`.count_id_switches` takes them).
        iou_thr (float): Least mask IoU of a match.

    Returns:
        tuple[int, int]: Matched and all GT instances, over the frames.
    """
    matched = total = 0
    for _, gt_rles, _, pred_rles in frames:
        total += len(gt_rles)
        matched += len(match_frame(gt_rles, pred_rles, iou_thr))
    return matched, total


def oracle_track_ids(frames: Sequence[tuple],
                     scores: Sequence[Sequence[float]],
                     iou_thr: float = 0.5) -> List[List[int]]:
    """Track ids of a clip's predictions as a perfect association would
    give them: each prediction, best score first, takes the id of the
    unclaimed GT instance of its frame it overlaps most, at mask IoU >=
    ``iou_thr`` (any class); every other prediction gets an id of its own,
    used nowhere else in the clip.

    The masks, scores and labels stay the model's: the VIS AP of these ids
    is what the detections would score without association errors, so the
    gap to it is the tracker's share and the rest the detector's.

    Args:
        frames (Sequence[tuple]): As :func:`frame_recall`'s.
        scores (Sequence[Sequence[float]]): Per frame, the predictions'
            scores.
        iou_thr (float): Least mask IoU of a match.

    Returns:
        list[list[int]]: Per frame, the predictions' new ids.
    """
    fresh = max((int(i) for f in frames for i in f[0]), default=-1) + 1
    out = []
    for (gt_ids, gt_rles, _, pred_rles), frame_scores in zip(frames, scores):
        ids = [-1] * len(pred_rles)
        if len(gt_rles) and len(pred_rles):
            iou = mask_utils.iou(list(pred_rles), list(gt_rles),
                                 [0] * len(gt_rles))
            claimed = set()
            for p in np.argsort(-np.asarray(frame_scores), kind='stable'):
                free = [g for g in range(len(gt_rles)) if g not in claimed]
                if not free:
                    break
                g = max(free, key=lambda g: iou[p, g])
                if iou[p, g] >= iou_thr:
                    ids[p] = int(gt_ids[g])
                    claimed.add(g)
        for p, i in enumerate(ids):
            if i == -1:
                ids[p], fresh = fresh, fresh + 1
        out.append(ids)
    return out


@METRICS.register_module()
class YouTubeVISDiagnosisMetric(YouTubeVISIDSwitchMetric):
    """:class:`YouTubeVISIDSwitchMetric` with what tells detection errors
    from association errors (local GT only):

    - ``frame_recall50``: the share of GT instances over all frames that a
      kept prediction covers at mask IoU >= 0.5 (:func:`frame_recall`, any
      class), which bounds any association;
    - with ``oracle_association=True``, every other number is computed on
      the track ids of a perfect association (:func:`oracle_track_ids`)
      instead of the tracker's: its VIS AP is the detections' ceiling, a
      diagnosis, not a result.

    Args:
        oracle_association (bool): See above. Defaults to False.
        **kwargs: ``YouTubeVISIDSwitchMetric``'s arguments;
            ``format_only`` is not supported (no local GT).
    """

    def __init__(self, *args, oracle_association: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.format_only:
            raise ValueError('YouTubeVISDiagnosisMetric needs the local '
                             'ground truth: format_only must be False')
        self.oracle_association = oracle_association

    def process_video(self, data_samples) -> None:
        clip = clip_frames(data_samples)
        frames, scores = track_frames(clip), [f['scores'] for f in clip]
        if self.oracle_association:
            # New containers (clone() is shallow): the model's outputs stay
            # as they came for any other metric of the evaluator.
            data_samples = [sample.clone() for sample in data_samples]
            for sample, ids in zip(data_samples,
                                   oracle_track_ids(frames, scores)):
                track = sample.pred_track_instances.clone()
                track.instances_id = torch.as_tensor(
                    ids, dtype=torch.long, device=track.instances_id.device)
                sample.pred_track_instances = track
        super().process_video(data_samples)
        self.results[-1] = (*self.results[-1], frame_recall(frames))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        matched = sum(r[-1][0] for r in results)
        num_gts = sum(r[-1][1] for r in results)
        metrics = super().compute_metrics([r[:-1] for r in results])
        metrics['frame_recall50'] = (round(matched / num_gts, 3)
                                     if num_gts else -1.)
        return metrics
