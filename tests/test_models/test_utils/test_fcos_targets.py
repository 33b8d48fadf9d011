"""fcos_targets_single: FCOS targets with the GT index of every positive."""
import torch
from mmengine.structures import InstanceData

from mmdet.models.dense_heads import FCOSHead
from mmdet_pep.models.utils import fcos_targets_single
from pep_testing import FCOS_STRIDES, TINY_REGRESS_RANGES, make_gt


def setting():
    head = FCOSHead(num_classes=3, in_channels=8, strides=FCOS_STRIDES,
                    regress_ranges=TINY_REGRESS_RANGES, center_sampling=True)
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    points = head.prior_generator.grid_priors(sizes, device='cpu')
    ranges = torch.cat([
        p.new_tensor(r)[None].expand(len(p), 2)
        for p, r in zip(points, TINY_REGRESS_RANGES)
    ])
    return head, torch.cat(points), ranges, [len(p) for p in points]


def test_no_gt_is_all_background():
    head, points, ranges, num = setting()
    gt = InstanceData(bboxes=torch.zeros(0, 4),
                      labels=torch.zeros(0, dtype=torch.long))
    labels, targets, pos, gt_inds = fcos_targets_single(
        head, gt, points, ranges, num)
    assert (labels == 3).all() and targets.shape == (len(points), 4)
    assert pos.numel() == 0 and gt_inds.numel() == 0


def test_point_mask_moves_or_removes_positives():
    head, points, ranges, num = setting()
    # A small box inside a large one: shared points go to the small one.
    gt = make_gt([[0, 0, 64, 64], [8, 8, 40, 40]], [0, 1])
    labels, _, pos, gt_inds = fcos_targets_single(head, gt, points, ranges,
                                                  num)
    assert set(gt_inds.tolist()) == {0, 1}
    # Forbid every point for GT 1: its positives become GT 0's where GT 0
    # may take them (same level range), or background.
    allowed = torch.ones(len(points), 2, dtype=torch.bool)
    allowed[:, 1] = False
    labels2, _, pos2, gt_inds2 = fcos_targets_single(
        head, gt, points, ranges, num, allowed)
    assert (gt_inds2 == 0).all() and (labels2[pos2] == 0).all()
    was_small = pos[gt_inds == 1]
    assert (labels2[was_small] != 1).all()
    # Nothing allowed: nothing positive.
    labels3, _, pos3, _ = fcos_targets_single(
        head, gt, points, ranges, num, torch.zeros_like(allowed))
    assert pos3.numel() == 0 and (labels3 == 3).all()
