"""mmdet_pep.deploy.ops eagerly against the code they stand in for:
mmdet's Matrix NMS and batched NMS on random candidates with invalid ones
mixed in, and the padded top-k / final gather."""
import torch
from mmcv.ops import batched_nms as mmcv_batched_nms

from mmdet.models.layers import mask_matrix_nms
from mmdet_pep.deploy.ops import (batched_nms, gather_valid, matrix_nms,
                                  topk_candidates)


def _candidates(seed, k=12):
    torch.manual_seed(seed)
    masks = torch.rand(k, 16, 16) > 0.6
    labels = torch.randint(0, 3, (k, ))
    scores = torch.rand(k)
    valid = torch.rand(k) > 0.3
    return masks, labels, scores, valid


def test_matrix_nms_equals_mmdets_on_the_valid_candidates():
    for seed in range(10):
        masks, labels, scores, valid = _candidates(seed)
        areas = masks.sum((1, 2)).float()
        ref_scores, ref_labels, _, ref_keep = mask_matrix_nms(
            masks[valid], labels[valid], scores[valid],
            mask_area=areas[valid], nms_pre=8, max_num=100,
            kernel='gaussian', sigma=2.0, filter_thr=0.05)
        got, got_valid, order = matrix_nms(
            masks, labels, scores, valid, areas, nms_pre=8,
            kernel='gaussian', sigma=2.0, filter_thr=0.05)
        kept = got_valid.nonzero()[:, 0]
        # The same survivors (indices into the valid candidates), scores
        # and labels, in the same order (both sort by decayed score).
        index = valid.nonzero()[:, 0]
        ref = index[ref_keep].tolist()
        ranked = kept[got[kept].argsort(descending=True)]
        assert order[ranked].tolist() == ref
        torch.testing.assert_close(got[ranked], ref_scores)
        assert labels[order[ranked]].tolist() == ref_labels.tolist()


def test_batched_nms_equals_mmcvs_on_the_valid_candidates():
    for seed in range(10):
        torch.manual_seed(seed)
        xy = torch.rand(20, 2) * 50
        boxes = torch.cat([xy, xy + 5 + torch.rand(20, 2) * 20], 1)
        scores, labels = torch.rand(20), torch.randint(0, 3, (20, ))
        valid = torch.rand(20) > 0.3
        index = valid.nonzero()[:, 0]
        _, keep = mmcv_batched_nms(boxes[valid], scores[valid],
                                   labels[valid],
                                   dict(type='nms', iou_threshold=0.5))
        kept = batched_nms(boxes, scores, labels, valid, 0.5, 100)
        assert sorted(kept.nonzero()[:, 0].tolist()) == sorted(
            index[keep].tolist())


def test_topk_candidates_and_gather_valid_pad_short_inputs():
    scores = torch.tensor([0.2, 0.9, 0.05])
    values, inds, valid = topk_candidates(scores, 5, 0.1)
    assert inds[:2].tolist() == [1, 0] and valid.tolist() == [
        True, True, False, False, False]
    kept, items = gather_valid(valid, values, 4, inds)
    torch.testing.assert_close(kept, torch.tensor([0.9, 0.2]))
    assert items.tolist() == [1, 0]
