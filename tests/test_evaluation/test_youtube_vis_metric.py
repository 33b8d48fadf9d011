"""YouTubeVISIDSwitchMetric (mmdet's YouTubeVISMetric on NumPy 2, and with no
predictions; identity switches; the per-frame mask AP) on hand-made clips
whose figures are derived by hand."""
import numpy as np
import pytest
import torch
from vis_testing import clip, evaluate, square


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
