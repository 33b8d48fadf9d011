"""YouTubeVISDiagnosisMetric (per-frame recall, the oracle association) on
hand-made clips whose figures are derived by hand."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from vis_testing import clip, evaluate, square

from mmdet_pep.evaluation.metrics import frame_recall, oracle_track_ids


def diagnose(track, **kwargs):
    return evaluate(track, 'YouTubeVISDiagnosisMetric', **kwargs)


def test_diagnosis_adds_the_frame_recall():
    """One right, one wrong track over 2 frames: 2 of the 4 GT instances
    are covered. Nothing predicted: 0. The other numbers are the protocol
    metric's."""
    track = clip([square(2, 2), square(20, 2)], [0.9, 0.8])
    res = diagnose(track)
    assert res['youtube_vis/frame_recall50'] == 0.5
    plain = evaluate(clip([square(2, 2), square(20, 2)], [0.9, 0.8]))
    assert {k: v for k, v in res.items() if 'recall' not in k} == plain
    assert diagnose(clip([], []))['youtube_vis/frame_recall50'] == 0.


def test_oracle_association_by_hand():
    """Ids swapped from frame 1 on: track 0 is GT 1 in frame 0 and GT 2 in
    frames 1-3; its video IoU with GT 2 is 3 * 64 / (128 + 3 * 64) = 0.6,
    track 1's with GT 1 the same: both TPs (AP 1) at the IoU thresholds
    0.5, 0.55 and 0.6, none from 0.65 on: AP = 3 / 10. The oracle
    gives each prediction its GT's id: AP 1, no switch; the masks, hence
    the frame AP and recall, stay the same, and the evaluator's samples
    keep the tracker's ids."""
    masks = [square(2, 2), square(20, 20)]
    ids = [[0, 1], [1, 0], [1, 0], [1, 0]]
    res = diagnose(clip(masks, [0.9, 0.8], num_frames=4, pred_ids=ids))
    assert res['youtube_vis/id_switches'] == 2
    assert res['youtube_vis/segm_mAP'] == pytest.approx(0.3)
    assert res['youtube_vis/segm_mAP_50'] == 1.0
    track = clip(masks, [0.9, 0.8], num_frames=4, pred_ids=ids)
    res = diagnose(track, oracle_association=True)
    assert res['youtube_vis/segm_mAP'] == 1.0
    assert res['youtube_vis/id_switches'] == 0
    assert res['youtube_vis/frame_segm_mAP'] == 1.0
    assert res['youtube_vis/frame_recall50'] == 1.0
    assert [f.pred_track_instances.instances_id.tolist()
            for f in track.video_data_samples] == ids
    with pytest.raises(ValueError, match='format_only'):
        diagnose(track, format_only=True, outfile_prefix='unused')


def test_oracle_ids_claim_each_gt_once_and_give_the_rest_new_ids():
    """Frame 0: two predictions on GT 1 (scores 0.5, 0.9): the better one
    takes id 1, the other a new id; a prediction on nothing a new id.
    Frame 1: one on GT 2 at IoU 48 / 80 = 0.6 takes 2, one at IoU 32 / 96
    < 0.5 a new id. New ids follow the largest GT id and never repeat in
    the clip."""
    def rles(*masks):
        return [mask_utils.encode(np.asfortranarray(m)) for m in masks]

    shifted = square(20, 20)
    shifted[20:22] = 0  # 48 of GT 2's pixels
    shifted[28:30, 20:28] = 1  # and 16 outside
    half = np.zeros((32, 32), np.uint8)
    half[20:24, 20:28] = 1  # 32 pixels inside GT 2
    half[24:28, 8:16] = 1  # 32 outside
    gt = rles(square(2, 2), square(20, 20))
    frames = [([1, 2], gt, [7, 8, 9],
               rles(square(2, 2), square(2, 2), square(12, 12))),
              ([1, 2], gt, [7, 8], rles(shifted, half))]
    ids = oracle_track_ids(frames, [[0.5, 0.9, 0.7], [0.6, 0.8]])
    assert ids == [[3, 1, 4], [2, 5]]
    # Covered: GT 1 in frame 0, GT 2 in frame 1; of 4.
    assert frame_recall(frames) == (2, 4)
