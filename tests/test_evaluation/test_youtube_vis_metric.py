"""YouTubeVISIDSwitchMetric (mmdet's YouTubeVISMetric on NumPy 2, and with no
predictions; identity switches; the per-frame mask AP) and
YouTubeVISDiagnosisMetric (per-frame recall, the oracle association) on
hand-made clips whose figures are derived by hand."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils

from mmdet.structures import DetDataSample, TrackDataSample


def square(y, x, size=8, shape=(32, 32)):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[y:y + size, x:x + size] = 1
    return mask


def clip(pred_masks, pred_scores, pred_ids=None, num_frames=2):
    """Frames of 32 x 32, two still GT tracks of class 0 (ids 1, 2:
    squares at (2, 2) and (20, 20)); ``pred_masks`` (tracks x (32, 32)) are
    predicted in every frame, with ids 0, 1, ... or ``pred_ids[t]``."""
    gts = [square(2, 2), square(20, 20)]
    frames = []
    for t in range(num_frames):
        instances = []
        for track_id, mask in enumerate(gts, 1):
            ys, xs = np.nonzero(mask)
            rle = mask_utils.encode(np.asfortranarray(mask))
            instances.append(
                dict(bbox=[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                     bbox_label=0, instance_id=track_id, ignore_flag=0,
                     mask=rle))
        sample = DetDataSample(
            metainfo=dict(img_id=t + 1, video_id=1, frame_id=t,
                          ori_shape=(32, 32), ori_video_length=num_frames,
                          instances=instances))
        pred = InstanceData()
        pred.masks = torch.from_numpy(np.stack(pred_masks)).bool() \
            if pred_masks else torch.zeros(0, 32, 32, dtype=torch.bool)
        pred.bboxes = torch.zeros(len(pred_masks), 4)
        pred.scores = torch.tensor(pred_scores, dtype=torch.float32)
        pred.labels = torch.zeros(len(pred_masks), dtype=torch.long)
        pred.instances_id = torch.arange(len(pred_masks)) \
            if pred_ids is None else torch.tensor(pred_ids[t])
        sample.pred_track_instances = pred
        frames.append(sample)
    track = TrackDataSample()
    track.video_data_samples = frames
    return track


def evaluate(track, metric='YouTubeVISIDSwitchMetric', **kwargs):
    evaluator = Evaluator(dict(type=metric, **kwargs))
    evaluator.dataset_meta = dict(classes=('disc', 'square', 'triangle'))
    evaluator.process(data_samples=[track], data_batch={})
    return evaluator.evaluate(1)


def test_perfect_tracks_score_one():
    res = evaluate(clip([square(2, 2), square(20, 20)], [0.9, 0.8]))
    assert res['youtube_vis/segm_mAP'] == 1.0
    assert res['youtube_vis/segm_mAP_50'] == 1.0
    assert res['youtube_vis/frame_segm_mAP'] == 1.0


def test_one_right_one_wrong_track_by_hand():
    """Track 0 is GT 1 exactly (video IoU 1, score 0.9); track 1 covers
    nothing of either GT (IoU 0, score 0.8): at every IoU threshold a TP
    then an FP, recall 1/2 with precision 1. COCO's 101 recall points
    0, 0.01, ..., 0.5 (51 of them) get precision 1, the rest 0: AP =
    51 / 101 = 0.505 (mmdet rounds to 3 decimals)."""
    res = evaluate(clip([square(2, 2), square(20, 2)], [0.9, 0.8]))
    assert res['youtube_vis/segm_mAP'] == pytest.approx(0.505)
    assert res['youtube_vis/segm_mAP_50'] == pytest.approx(0.505)
    # Frame by frame the same: each frame a TP (0.9) and an FP (0.8), 4 GT
    # instances; recall 1/2 at precision 1.
    assert res['youtube_vis/frame_segm_mAP'] == pytest.approx(0.505)
    # The wrong track ranked first instead: FP then TP, precision 1/2 at
    # recall 1/2: AP = 51 / 101 * 0.5 = 0.252 (0.2525 rounded down by the
    # binary float).
    res = evaluate(clip([square(2, 2), square(20, 2)], [0.8, 0.9]))
    assert res['youtube_vis/segm_mAP'] == pytest.approx(0.252, abs=0.001)


def test_no_prediction_at_all_scores_zero():
    res = evaluate(clip([], []))
    assert res['youtube_vis/segm_mAP'] == 0.
    assert res['youtube_vis/frame_segm_mAP'] == 0.
    assert set(res) == {
        f'youtube_vis/segm_{k}'
        for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
    } | {'youtube_vis/id_switches'} | {
        f'youtube_vis/frame_segm_{k}' for k in ('mAP', 'mAP_50', 'mAP_75')
    }
    assert not hasattr(np, 'float')  # the NumPy shim did not leak


def test_identity_switches_by_hand():
    """Four frames; the two tracks' ids are swapped in frame 1 (two
    switches) and stay swapped in frames 2 and 3 (none): 2. Perfect ids:
    0."""
    masks = [square(2, 2), square(20, 20)]
    res = evaluate(clip(masks, [0.9, 0.8], num_frames=4,
                        pred_ids=[[0, 1], [1, 0], [1, 0], [1, 0]]))
    assert res['youtube_vis/id_switches'] == 2
    res = evaluate(clip(masks, [0.9, 0.8], num_frames=4))
    assert res['youtube_vis/id_switches'] == 0
    # A prediction that covers no GT (IoU < 0.5) matches nothing.
    res = evaluate(clip([square(2, 2), square(20, 2)], [0.9, 0.8],
                        num_frames=3, pred_ids=[[0, 1], [1, 0], [1, 0]]))
    assert res['youtube_vis/id_switches'] == 1


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
    from mmdet_pep.evaluation.metrics import frame_recall, oracle_track_ids

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


def test_frame_ap_counts_each_frame_where_the_track_does_not():
    """One track: GT 1 exactly in frame 0 (score 0.9), a square on no GT
    in frame 1 (score 0.5). As a video its IoU with GT 1 is 64 / 192 < 0.5:
    VIS AP 0. Frame by frame: a TP (0.9) then an FP (0.5) among 4 GT
    instances, recall 1/4 at precision 1: COCO's recall points 0 to 0.25
    (26 of 101) get precision 1, AP = 26 / 101 = 0.257."""
    track = clip([square(2, 2)], [0.9])
    second = track.video_data_samples[1].pred_track_instances
    second.masks = torch.from_numpy(square(20, 2)[None]).bool()
    second.scores = torch.tensor([0.5])
    res = evaluate(track)
    assert res['youtube_vis/segm_mAP'] == 0.
    assert res['youtube_vis/frame_segm_mAP'] == pytest.approx(0.257)
    assert res['youtube_vis/frame_segm_mAP_50'] == pytest.approx(0.257)


def test_frame_ap_and_switches_read_polygon_and_uncompressed_gt():
    """Ground truth as polygons or uncompressed RLE (YouTube-VIS's own
    json) scores as the compressed RLE does."""
    square_polygon = [[2., 2., 10., 2., 10., 10., 2., 10.]]
    # Run lengths of the Fortran-order mask, from a 0-run.
    flat = square(2, 2).ravel(order='F')
    edges = np.flatnonzero(np.diff(flat)) + 1
    uncompressed = dict(size=[32, 32],
                        counts=np.diff([0, *edges, flat.size]).tolist())
    for form in (square_polygon, uncompressed):
        track = clip([square(2, 2), square(20, 20)], [0.9, 0.8],
                     num_frames=3, pred_ids=[[0, 1], [1, 0], [1, 0]])
        for sample in track.video_data_samples:
            sample.instances[0]['mask'] = form
        res = evaluate(track)
        assert res['youtube_vis/frame_segm_mAP'] == 1.0
        assert res['youtube_vis/id_switches'] == 2
