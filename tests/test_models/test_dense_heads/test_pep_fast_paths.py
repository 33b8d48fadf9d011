"""PEP's optimised paths give the outputs of the reference paths they
replaced (issue: PEP as fast as CondInst): the vectorised cell assignment
against the per-instance loop it replaced, on crowded, nested, tied,
degenerate and empty GT, square and non-square inputs, all the
synthetic recipe's levels."""
import numpy as np
import pytest
import torch

from mmdet.registry import MODELS
from pep_testing import img_meta, make_gt, tiny_head_cfg


def reference_assign_cells(head, gt_labels, gt_boxes, gt_centers, sizes,
                           valid, pad_shape):
    """The per-level, per-instance loop of PEPHead before vectorisation
    (commit a6c10e3), painting the cells of each instance largest first."""
    device = gt_labels.device
    num_gts = gt_labels.numel()
    pad_h, pad_w = pad_shape
    labels, pos_gt_inds = [], []
    center_cells = torch.full((num_gts, head.num_levels), -1,
                              dtype=torch.long, device=device)
    order = sizes.argsort(descending=True).tolist()
    for lvl, ((lo, hi), num_grid) in enumerate(
            zip(head.scale_ranges, head.num_grids)):
        lvl_labels = torch.full((num_grid, num_grid), head.num_classes,
                                dtype=torch.long, device=device)
        lvl_inds = torch.full_like(lvl_labels, -1)
        hit = valid & (sizes >= lo) & (sizes <= hi)
        for g in order:
            if not hit[g]:
                continue
            x1, y1, x2, y2 = gt_boxes[g].tolist()
            half_w = 0.5 * (x2 - x1) * head.pos_scale
            half_h = 0.5 * (y2 - y1) * head.pos_scale
            ctr_x, ctr_y = gt_centers[g].tolist()

            def cell(v, size):
                return min(max(int(v / size * num_grid), 0), num_grid - 1)

            ci, cj = cell(ctr_y, pad_h), cell(ctr_x, pad_w)
            top = max(cell(ctr_y - half_h, pad_h), ci - 1)
            down = min(cell(ctr_y + half_h, pad_h), ci + 1)
            left = max(cell(ctr_x - half_w, pad_w), cj - 1)
            right = min(cell(ctr_x + half_w, pad_w), cj + 1)
            lvl_labels[top:down + 1, left:right + 1] = gt_labels[g]
            lvl_inds[top:down + 1, left:right + 1] = g
            center_cells[g, lvl] = ci * num_grid + cj
        labels.append(lvl_labels.flatten())
        pos_gt_inds.append(lvl_inds.flatten())
    return labels, pos_gt_inds, center_cells


def assert_same(got, want):
    """The flat labels and GT indices of all cells and the per-level
    centre cells of _assign_cells equal the loop's, exactly."""
    labels, inds, centers = want
    for g, r in zip(got, (torch.cat(labels), torch.cat(inds), centers)):
        torch.testing.assert_close(g, r, rtol=0, atol=0)


def random_gt(rng, num, shape):
    h, w = shape
    boxes = []
    for _ in range(num):
        bw, bh = rng.integers(1, w // 2), rng.integers(1, h // 2)
        x1, y1 = rng.integers(0, w - bw), rng.integers(0, h - bh)
        boxes.append([x1, y1, x1 + bw, y1 + bh])
    return make_gt(boxes, rng.integers(0, 3, num).tolist(), shape,
                   shape_kind=rng.choice(['rect', 'disc']))


def inputs(head, gt, shape):
    """What _get_targets_single hands to the cell assignment."""
    masks = gt.masks.to_tensor(dtype=torch.float32, device='cpu')
    targets = head._get_targets_single(gt, img_meta(shape),
                                       (shape[0] // 4, shape[1] // 4))
    boxes, centers = targets[4], targets[5]
    sizes = torch.sqrt(
        (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return gt.labels, boxes, centers, sizes, masks.sum((1, 2)) > 0


def synthetic_head():
    """The levels of configs/pep/pep_r18_fpn_1200it_synthetic.py."""
    return MODELS.build(
        tiny_head_cfg(
            scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192),
                          (96, 512)),
            num_grids=[24, 18, 12, 8, 6]))


@pytest.mark.parametrize('shape', [(64, 64), (96, 64), (64, 128)])
@pytest.mark.parametrize('num', [0, 1, 5, 40])
def test_vectorised_assignment_equals_the_loop(shape, num):
    head = synthetic_head()
    rng = np.random.default_rng(num * 1000 + shape[1])
    for _ in range(5):
        gt = random_gt(rng, num, shape)
        args = inputs(head, gt, shape)
        assert_same(head._assign_cells(*args, shape),
                    reference_assign_cells(head, *args, shape))


def test_ties_degenerate_and_nested_instances():
    # Equal-size boxes on one cell (ties), a zero-area mask, nested boxes,
    # boxes on the border: the loop's result, cell for cell.
    head = synthetic_head()
    shape = (64, 64)
    gt = make_gt([[8, 8, 24, 24], [10, 10, 26, 26], [9, 9, 25, 25],
                  [30, 30, 30, 40], [0, 0, 64, 64], [20, 20, 44, 44],
                  [28, 28, 36, 36], [60, 0, 64, 4], [0, 60, 4, 64]],
                 [0, 1, 2, 0, 1, 2, 0, 1, 2], shape)
    args = inputs(head, gt, shape)
    got = head._assign_cells(*args, shape)
    assert_same(got, reference_assign_cells(head, *args, shape))
    # The zero-area mask claims nothing.
    assert not (got[1] == 3).any() and (got[2][3] == -1).all()
