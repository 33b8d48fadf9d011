"""Faithfulness of the three seed ports to their official code (issue #41,
item 5).

For each method, one loss value and one post-processing output on a tiny
hand-made case are checked against numbers derived by hand from the
official formulas. The expected values never come from this code: they are
numbers, ``math`` and small numpy expressions, each step citing the
official file and line it comes from:

- ``SM:`` ``JialeCao001/SipMask`` @ bc63fa9, under ``SipMask-mmdetection/``;
- ``EM:`` ``yinghdb/EmbedMask`` @ e9465cb (the "new version");
- ``SE:`` ``davyneven/SpatialEmbeddings`` @ 39ea249.

Short names after a first full citation: ``sipmask_head.py`` is SM:
``mmdet/models/anchor_heads/sipmask_head.py``; ``loss.py`` and
``inference.py`` are under EM: ``fcos_core/modeling/rpn/embed_mask/``;
``my_loss.py`` is SE: ``src/criterions/my_loss.py``, ``utils.py`` SE:
``src/utils/utils.py``.

Where the port departs from the official formula, the test is written
against the official code and marked ``xfail(strict=True)``, naming the
departure.

Shape shorthand: B images, P points, K mask bases, D embedding dimensions,
H x W a mask map.
"""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.structures.mask import BitmapMasks
from pep_testing import built, img_meta, tiny_fcos_head

# Helpers: the official formulas written out ---------------------------------


def resize_1d(values, out_len):
    """PyTorch's bilinear resampling along one axis with
    ``align_corners=False``, as every official ``F.interpolate`` call here
    uses it: output cell o reads the input at ``x = (o + 0.5) * n / out_len
    - 0.5`` (clamped at 0), linearly between cells ``floor(x)`` and the
    next (clamped at the last)."""
    n = len(values)
    out = []
    for o in range(out_len):
        x = max((o + 0.5) * n / out_len - 0.5, 0.)
        i0 = min(int(math.floor(x)), n - 1)
        i1 = min(i0 + 1, n - 1)
        w = x - i0
        out.append((1 - w) * values[i0] + w * values[i1])
    return np.array(out)


def resize_2d(grid, out_h, out_w):
    """Bilinear resize of a 2-D array: separable, rows then columns."""
    rows = np.stack([resize_1d(r, out_w) for r in np.asarray(grid, float)])
    return np.stack([resize_1d(c, out_h) for c in rows.T]).T


def rect_mask(shape, x1, y1, x2, y2):
    """A binary (h, w) pixel mask, 1 on columns [x1, x2) and rows [y1, y2)."""
    mask = np.zeros(shape, np.uint8)
    mask[y1:y2, x1:x2] = 1
    return mask


def bce(logit, target):
    """The official ``F.binary_cross_entropy`` of ``sigmoid(logit)``
    (SM: mmdet/models/anchor_heads/sipmask_head.py:448-451, 458)."""
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def lovasz_hinge_by_hand(errors, labels):
    """The official binary Lovasz hinge of errors already sorted by hand in
    decreasing order (EM: fcos_core/layers/lovasz_hinge_loss.py:7-19,
    36-53; SE: src/criterions/lovasz_losses.py:18-30, 97-114, the same):
    ``intersection = G - cumsum(gt)``, ``union = G + cumsum(1 - gt)``,
    ``jaccard = 1 - intersection / union``, its increments dotted with
    ``relu(errors)``."""
    assert all(a >= b for a, b in zip(errors, errors[1:])), \
        'the hand-made order is not decreasing'
    num_fg = sum(labels)
    loss, previous, cum_fg, cum_bg = 0., 0., 0, 0
    for error, label in zip(errors, labels):
        cum_fg += label
        cum_bg += 1 - label
        jaccard = 1 - (num_fg - cum_fg) / (num_fg + cum_bg)
        loss += max(error, 0.) * (jaccard - previous)
        previous = jaccard
    return loss


def logit(p):
    return math.log(p / (1 - p))


# SipMask ---------------------------------------------------------------------

SIP_NUM_BASES = 2


def sipmask_head():
    return built(
        tiny_fcos_head(
            'SipMaskHead', num_bases=SIP_NUM_BASES, basis_channels=4))


def official_iou_plus_one(a, b):
    """mmdet 1.x ``bbox_overlaps(is_aligned=True)``, the +1 pixel
    convention (SM: mmdet/core/bbox/geometry.py:57-69)."""
    iw = max(min(a[2], b[2]) - max(a[0], b[0]) + 1, 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]) + 1, 0)
    overlap = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return overlap / (area_a + area_b - overlap)


def sipmask_loss_case(gt1_box):
    """Two images of 8 x 8 px (a 4 x 4 basis map at stride 2), B = 2.

    Image 0: GT 0 (label 0) and GT 1 (label 2) and three positives:
    A of GT 0, box (0, 0, 6, 8) px; B of GT 1, box (2, 2, 8, 6) px; C of
    GT 0, box (6, 6, 8, 8) px, one basis cell, which the official loss
    drops. Image 1: one GT, no positive.
    """
    points = torch.tensor([[3., 4.], [5., 4.], [7., 7.]])
    # (left, top, right, bottom) distances in pixels.
    dists = torch.tensor([[3., 4., 3., 4.], [3., 2., 3., 2.],
                          [1., 1., 1., 1.]])
    bbox_preds = torch.stack([dists, dists])
    cls_scores = torch.zeros(2, 3, 3)
    # A's logit of its GT's class 0 stays 0: sigmoid 1/2.
    cls_scores[0, 1, 2] = math.log(3.)  # B, class 2: sigmoid 3/4
    cls_scores[0, 2, 0] = math.log(9.)  # C: dropped
    # Bases: b0 = 1, b1 = the column index j.
    basis = torch.stack([torch.ones(4, 4), torch.arange(4.).expand(4, 4)])
    bases = torch.stack([basis, basis])
    # Coefficients (quadrant-major: TL, TR, BL, BR, each (c0, c1)).
    coeffs = torch.zeros(2, 3, 4 * SIP_NUM_BASES)
    coeffs[0, 0] = torch.tensor([2., 0., 0., -1., 1., 0., 0., .5])
    # B's bottom quadrants are never used (see below): huge values would
    # show if they were.
    coeffs[0, 1] = torch.tensor([0., .5, -3., 1., 50., 50., -50., -50.])
    coeffs[0, 2] = 30.
    gt0 = InstanceData(
        bboxes=torch.tensor([[0., 0., 6., 8.], gt1_box]),
        labels=torch.tensor([0, 2]),
        masks=BitmapMasks(
            np.stack([
                rect_mask((8, 8), 0, 0, 5, 8),
                rect_mask((8, 8), 2, 2, 8, 5)
            ]), 8, 8))
    gt1 = InstanceData(
        bboxes=torch.tensor([[0., 0., 4., 4.]]),
        labels=torch.tensor([1]),
        masks=BitmapMasks(rect_mask((8, 8), 0, 0, 4, 4)[None], 8, 8))
    pos_inds = [torch.tensor([0, 1, 2]), torch.tensor([], dtype=torch.long)]
    gt_inds = [torch.tensor([0, 1, 0]), torch.tensor([], dtype=torch.long)]
    return (cls_scores, bbox_preds, coeffs, bases, points, pos_inds, gt_inds,
            [gt0, gt1])


def sipmask_expected_loss(gt1_box):
    """The official mask loss of :func:`sipmask_loss_case`, by hand."""
    # Predicted boxes / 2, in basis cells (SM: mmdet/models/anchor_heads/
    # sipmask_head.py:409); C's area
    # (7 - 6) * (8 - 7) = 1.0 is not > 1.0 and it is dropped (:420-423),
    # leaving N = 2 positives.
    box_a, box_b = (0, 0, 3, 4), (1, 1, 4, 3)
    num_kept = 2
    # Crop-split (SM: mmdet/ops/crop/src/crop_split_cuda_kernel.cu:45-52,
    # pred_masks stacked TL, TR, BL, BR at sipmask_head.py:452): cell
    # (i, j) is in box (x1, y1, x2, y2) iff x1 <= j < x2 and y1 <= i < y2;
    # its quadrant is (int((i - y1) / ((y2 - y1 + 0.1) / 2)), int((j - x1)
    # / ((x2 - x1 + 0.1) / 2))).
    # A: width 3 splits at 1.55: columns 0, 1 left, 2 right; height 4
    # splits at 2.05: rows 0, 1, 2 top, row 3 bottom.
    # B: width 3: columns 1, 2 left, 3 right; height 2 splits at 1.05: row
    # 1 (0 / 1.05) and row 2 (1 / 1.05 = 0.95) are both top.
    # Logits: quadrant q's coefficients . bases = c0 + c1 * j
    # (sipmask_head.py:448-451).
    # GT on the basis map (:437-442): bilinear x0.5 averages pixels 2j and
    # 2j + 1, then > 0.5. GT 0 (pixels x < 5): columns 0, 1 are 1, column 2
    # is 0.5 -> 0. GT 1 (pixels 2 <= x < 8, 2 <= y < 5): columns 1-3; row 1
    # is 1, row 2 is 0.5 -> 0.
    gt_a = resize_2d(rect_mask((8, 8), 0, 0, 5, 8), 4, 4) > 0.5
    gt_b = resize_2d(rect_mask((8, 8), 2, 2, 8, 5), 4, 4) > 0.5
    assert gt_a[:, :2].all() and not gt_a[:, 2:].any()
    assert gt_b[1, 1:].all() and gt_b.sum() == 3
    # BCE summed over the box (outside it both maps are 0: no loss),
    # (:453-458).
    # A (TL 2 + 0 j, TR 0 - j, BL 1 + 0 j, BR 0 + 0.5 j):
    sum_a = (6 * bce(2., 1)  # TL: rows 0-2, columns 0-1, target 1
             + 3 * bce(0 - 1 * 2, 0)  # TR: rows 0-2, column 2, target 0
             + 2 * bce(1., 1)  # BL: row 3, columns 0-1
             + bce(0 + .5 * 2, 0))  # BR: row 3, column 2
    # B (TL 0 + 0.5 j, TR -3 + j):
    sum_b = (bce(.5 * 1, 1) + bce(.5 * 2, 1)  # TL: row 1, columns 1-2
             + bce(-3 + 1 * 3, 1)  # TR: row 1, column 3
             + bce(.5 * 1, 0) + bce(.5 * 2, 0)  # TL: row 2
             + bce(-3 + 1 * 3, 0))  # TR: row 2
    # Weights: sigmoid(cls of the GT class) * IoU(GT box / 2, box),
    # renormalised to mean 1 (:429-435).
    gt1_cells = [v / 2 for v in gt1_box]
    w_a = 0.5 * official_iou_plus_one((0, 0, 3, 4), box_a)
    w_b = 0.75 * official_iou_plus_one(gt1_cells, box_b)
    total = w_a + w_b + 1e-4
    w_a, w_b = w_a / total * num_kept, w_b / total * num_kept
    # / box width / box height / N (center_size, :16-18, 459-462), times
    # the weight, summed (:463); / number of images (:484).
    image0 = (w_a * sum_a / (3 * 4) / num_kept +
              w_b * sum_b / (3 * 2) / num_kept)
    return (image0 + 0.) / 2


@pytest.mark.parametrize('gt1_box', [
    pytest.param([2., 2., 8., 6.], id='pred-box-equals-gt'),
    pytest.param(
        [2., 2., 8., 8.],
        id='pred-box-differs',
        marks=pytest.mark.xfail(
            strict=True,
            reason='departure: the mask weight IoU. Official: mmdet 1.x '
            'bbox_overlaps on boxes / 2 with the +1 convention (SM: '
            'mmdet/core/bbox/geometry.py:57-69, sipmask_head.py:432), '
            'here 0.75; the port: mmdet 3 bbox_overlaps in pixels without '
            '+1, 24 / 36'))
])
def test_sipmask_loss_matches_official(gt1_box):
    head = sipmask_head()
    loss = head.loss_mask_by_feat(*sipmask_loss_case(gt1_box))
    assert loss.item() == pytest.approx(
        sipmask_expected_loss(gt1_box), rel=1e-5)


def test_sipmask_mask_assembly_matches_official():
    """One detection, box (0, 2, 8, 8) px at the 8 x 8 input, 1 basis equal
    to 1, so each quadrant's probability is the sigmoid of its
    coefficient."""
    head = sipmask_head()
    probs = {'TL': .9, 'TR': .3, 'BL': .2, 'BR': .8}
    coeffs = torch.zeros(1, 4 * SIP_NUM_BASES)
    coeffs[0, ::SIP_NUM_BASES] = torch.tensor(
        [logit(probs[q]) for q in ('TL', 'TR', 'BL', 'BR')])
    bases = torch.zeros(SIP_NUM_BASES, 4, 4)
    bases[0] = 1.
    results = InstanceData(
        bboxes=torch.tensor([[0., 2., 8., 8.]]),
        scores=torch.tensor([.9]),
        labels=torch.tensor([0]),
        coeffs=coeffs)
    masks = head._predict_masks(results, bases, img_meta((8, 8)),
                                head.test_cfg, rescale=False)

    # The box / 2 on the basis map (sipmask_head.py:623, scale 2): cells
    # (0, 1, 4, 4). Crop-split (crop_split_cuda_kernel.cu:45-52): width 4
    # splits at 2.05, so columns 0, 1, 2 are left and column 3 right;
    # height 3 splits at 1.55: rows 1, 2 top, row 3 bottom; 0 outside.
    cells = np.zeros((4, 4))
    cells[1:3, 0:3] = probs['TL']
    cells[1:3, 3] = probs['TR']
    cells[3, 0:3] = probs['BL']
    cells[3, 3] = probs['BR']
    # Bilinear x2 (:632) and > 0.4 (:633).
    expected = resize_2d(cells, 8, 8) > 0.4
    # Output row (column) 2r + k reads the cell map at r - 0.25 + 0.5 k:
    # e.g. pixel (row 2, col 7) = 0.25 * 0 (row 0, outside the box) + 0.75
    # * 0.3 (TR) = 0.225, off; pixel (row 5, col 7) = 0.75 * 0.3 (TR) +
    # 0.25 * 0.8 (BR) = 0.425, on.
    assert (expected.astype(int) == np.array([
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 1, 1],
    ])).all()
    assert masks.shape == (1, 8, 8)
    assert (masks[0].numpy() == expected).all()


# EmbedMask -------------------------------------------------------------------


def embedmask_head():
    return built(
        tiny_fcos_head('EmbedMaskHead', embed_dim=2, num_mask_convs=1))


def embedmask_probs(q, m, shape):
    """p = exp(-sum_d m_d (e_d - q_d)^2) (EM: fcos_core/modeling/rpn/
    embed_mask/loss.py:300-314) with the pixel embedding e = (j, i) at
    row i, column j."""
    h, w = shape
    return np.array([[
        math.exp(-(m[0] * (j - q[0])**2 + m[1] * (i - q[1])**2))
        for j in range(w)
    ] for i in range(h)])


def embedmask_instance_loss(probs, target, order):
    """Lovasz hinge of logit(p) (EM: fcos_core/layers/
    lovasz_hinge_loss.py:62-65, p clamped to [1e-9, 1 - 1e-9], not
    reached here) with the pixels taken in the hand-made ``order`` of
    decreasing errors ``1 - logit * (2 gt - 1)`` (:46-47)."""
    logits = np.log(probs) - np.log(1 - probs)
    errors = 1 - logits * (2 * target - 1)
    return lovasz_hinge_by_hand([errors[ij] for ij in order],
                                [int(target[ij]) for ij in order])


def test_embedmask_loss_matches_official():
    """Two images of 8 x 16 px (a 2 x 4 pixel-embedding map at stride 4),
    D = 2, pixel embeddings (j, i). Image 0: GT 0 with one positive, GT 1
    with two (its best box carries its embedding, the other a decoy);
    image 1: no positive."""
    head = embedmask_head()
    points = torch.tensor([[2., 4.], [9., 2.], [10., 2.]])
    dists = torch.tensor([[2., 4., 3., 4.], [3., 2., 3., 2.],
                          [1., 1., 1., 1.]])
    ln2, ln125 = math.log(2.), math.log(1.25)
    q0, m0 = (0., .25), (ln2, 16 * ln125)
    q1, m1 = (1.6, 0.), (2 * ln2, ln2)
    embeds = torch.tensor([q0, q1, (0., 1.)])
    margins = torch.tensor([m0, m1, (1., 1.)])
    ys, xs = torch.meshgrid(torch.arange(2.), torch.arange(4.), indexing='ij')
    pixel_embed = torch.stack([xs, ys])
    gt0 = InstanceData(
        bboxes=torch.tensor([[0., 0., 5., 8.], [6., 0., 12., 4.]]),
        labels=torch.tensor([0, 1]),
        masks=BitmapMasks(
            np.stack([
                rect_mask((8, 16), 0, 0, 5, 8),
                rect_mask((8, 16), 6, 0, 12, 4)
            ]), 8, 16))
    gt1 = InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long),
        masks=BitmapMasks(np.zeros((0, 8, 16), np.uint8), 8, 16))
    loss = head.loss_mask_by_feat(
        torch.stack([dists, dists]), torch.stack([embeds, embeds]),
        torch.stack([margins, margins]),
        torch.stack([pixel_embed, pixel_embed]), points,
        [torch.tensor([0, 1, 2]),
         torch.tensor([], dtype=torch.long)],
        [torch.tensor([0, 1, 1]),
         torch.tensor([], dtype=torch.long)], [gt0, gt1])

    # One proposal per GT: the positive whose predicted box has the largest
    # IoU with the GT box (EM: loss.py:224-256). GT 1: (6, 0, 12, 4) has
    # IoU 1; the decoy (9, 1, 11, 3) 4 / 24 (9 / 35 with the official +1,
    # EM: fcos_core/structures/boxlist_ops.py:110-115): the first either
    # way.
    # Targets (loss.py:282-298): the mask padded to the map's extent and
    # resized bilinearly to the stride-4 map, > 0. x0.25 reads pixels 4j + 1
    # and 4j + 2: GT 0 (x < 5) gives columns [1, 0, 0, 0] (pixel 4 alone
    # does not reach column 1); GT 1 (6 <= x < 12, y < 4) gives columns
    # [0, 1, 1, 0] (column 1 reads pixels 5 and 6: 0.5 > 0) in row 0 only.
    t0 = resize_2d(rect_mask((8, 16), 0, 0, 5, 8), 2, 4) > 0
    t1 = resize_2d(rect_mask((8, 16), 6, 0, 12, 4), 2, 4) > 0
    assert (t0 == [[1, 0, 0, 0], [1, 0, 0, 0]]).all()
    assert (t1 == [[0, 1, 1, 0], [0, 0, 0, 0]]).all()
    # GT 0: p = 0.8^(16 (i - 1/4)^2) * 2^(-j^2): row 0 [0.8, 0.4, 0.05,
    # 0.8 / 512], row 1 0.8^9 = 0.134 times the same. Errors 1 - logit
    # (fg) or 1 + logit (bg): (1, 0) fg 1 - ln(0.134 / 0.866) = 2.87;
    # (0, 1) bg 1 + ln(2 / 3) = 0.59; (0, 0) fg 1 - ln 4 = -0.39; the rest
    # below -1.6.
    p0 = embedmask_probs(q0, m0, (2, 4))
    loss0 = embedmask_instance_loss(
        p0, t0.astype(float),
        [(1, 0), (0, 1), (0, 0), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3)])
    # GT 1: p = 2^(-2 (j - 1.6)^2 - i^2): row 0 [0.029, 0.607, 0.801,
    # 0.066], row 1 halved. Errors: (1, 2) bg 1 + ln(0.401 / 0.599) =
    # 0.60; (0, 1) fg 1 - ln(0.607 / 0.393) = 0.56; (1, 1) bg 0.17; (0, 2)
    # fg -0.39; the rest below -1.6.
    p1 = embedmask_probs(q1, m1, (2, 4))
    loss1 = embedmask_instance_loss(
        p1, t1.astype(float),
        [(1, 2), (0, 1), (1, 1), (0, 2), (0, 3), (1, 3), (0, 0), (1, 0)])
    # Mean over an image's instances (loss.py:436), / N images times
    # LOSS_MASK_ALPHA 0.5 (:438; fcos_core/config/defaults.py:72); image 1
    # adds nothing but counts in N.
    expected = ((loss0 + loss1) / 2 + 0.) / 2 * 0.5
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.xfail(
    strict=True,
    reason='departure: the best proposal per GT. Official: maximum IoU by '
    'maskrcnn-benchmark boxlist_iou, +1 convention (EM: fcos_core/'
    'structures/boxlist_ops.py:110-115, bounding_box.py:235-239); the '
    'port: mmdet 3 bbox_overlaps without +1, which ranks a small square '
    'above a thin box of nearly the same area')
def test_embedmask_best_proposal_uses_official_iou():
    """GT (0, 0, 10, 10) on a 16 x 16 input (4 x 4 map) with two positives:
    square (0, 0, 5.5, 5.5) and thin (0, 0, 10, 3).

    Official (loss.py:246-252): IoU with +1 is 6.5^2 / 11^2 = 0.349 for the
    square and 11 * 4 / 11^2 = 0.364 for the thin box, which is chosen.
    (Without +1: 0.3025 and 0.30, the square.) The thin box carries an
    embedding that fits the GT exactly, the square one a wrong one, so
    the official loss is 0.
    """
    head = embedmask_head()
    points = torch.tensor([[2.75, 2.75], [5., 1.5]])
    dists = torch.tensor([[2.75, 2.75, 2.75, 2.75], [5., 1.5, 5., 1.5]])
    # Thin box: q = (0.5, 0.5), m = 0.6: the 4 GT cells have p = e^-0.3 =
    # 0.741, logit 1.05 >= 1; the nearest background cells p = e^-1.5,
    # logit -1.25 <= -1: every hinge error <= 0, the Lovasz hinge is 0.
    embeds = torch.tensor([[3., 3.], [.5, .5]])
    margins = torch.tensor([[1., 1.], [.6, .6]])
    ys, xs = torch.meshgrid(torch.arange(4.), torch.arange(4.), indexing='ij')
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.]]),
        labels=torch.tensor([0]),
        # x, y < 6: cells 0 and 1 (cell 1 reads pixels 5 and 6: 0.5 > 0).
        masks=BitmapMasks(rect_mask((16, 16), 0, 0, 6, 6)[None], 16, 16))
    loss = head.loss_mask_by_feat(dists[None], embeds[None], margins[None],
                                  torch.stack([xs, ys])[None], points,
                                  [torch.tensor([0, 1])],
                                  [torch.tensor([0, 0])], [gt])
    assert loss.item() == pytest.approx(0., abs=1e-6)


def test_embedmask_mask_matches_official():
    """One detection, box (12, 0, 16, 8) px on an 8 x 32 input (a 2 x 8 map
    at stride 4), pixel embeddings (j, 0), q = (3.5, 0), m = (0.2, 1)."""
    head = embedmask_head()
    xs = torch.arange(8.).expand(2, 8)
    pixel_embed = torch.stack([xs, torch.zeros(2, 8)])
    results = InstanceData(
        bboxes=torch.tensor([[12., 0., 16., 8.]]),
        scores=torch.tensor([.9]),
        labels=torch.tensor([0]),
        embeds=torch.tensor([[3.5, 0.]]),
        margins=torch.tensor([[.2, 1.]]))
    masks = head._predict_masks(results, pixel_embed, img_meta((8, 32)),
                                head.test_cfg, rescale=False)

    # log p = -sum_d m_d (e_d - q_d)^2 (EM: fcos_core/csrc/cuda/
    # MaskProb_cuda.cu:51-58) inside the box in cells (box / 4,
    # inference.py:170, 191) made int and padded by 2 cells, clamped to the
    # map (inference.py:153-157): columns [3 - 2, 4 + 2) = 1..5, rows [0,
    # 2); -10 elsewhere (MaskProb_cuda.cu:84).
    log_p = np.array([-0.2 * (j - 3.5)**2 for j in range(8)])
    log_p[[0, 6, 7]] = -10.
    # Columns: -10, -1.25, -0.45, -0.05, -0.05, -0.45, -10, -10.
    # Bilinear x4 of log p and > ln 0.53 (coco_eval.py:124-130;
    # inference.py:53; MASK_TH 0.53 in defaults.py:79). Output pixel 4j + k
    # reads the map at j - 0.375, j - 0.125, j + 0.125, j + 0.375: e.g.
    # pixel 8 = 0.625 * -0.45 + 0.375 * -1.25 = -0.75 (off), pixel 9 =
    # 0.875 * -0.45 + 0.125 * -1.25 = -0.55 (on), pixel 21 = 0.875 * -0.45
    # + 0.125 * -0.05 = -0.40 (on), pixel 22 = 0.875 * -0.45 + 0.125 * -10
    # = -1.64 (off; -0.55, on, were column 6 not outside the padded box).
    row = resize_1d(log_p, 32) > math.log(0.53)
    assert row.nonzero()[0].tolist() == list(range(9, 22))
    assert masks.shape == (1, 8, 32)
    assert (masks[0].numpy() == row[None].repeat(8, 0)).all()


# SpatialEmbeddings ----------------------------------------------------------

# The official x grid: linspace(0, 2, 2048), a step of 2 / 2047 per pixel
# (SE: src/criterions/my_loss.py:27-31; src/utils/utils.py:99-101 for the
# clustering); its y grid is 0 on the first row. On a one-row map the port's
# grid j / grid_unit is that grid exactly for grid_unit = 2047 / 2.
SE_STEP = 2 / 2047


def spatialemb_head(**test_cfg):
    return built(
        dict(
            type='SpatialEmbHead',
            num_classes=1,
            in_channels=8,
            decoder_channels=(8, 4),
            grid_unit=1 / SE_STEP,
            test_cfg=test_cfg))


def sigma_for_radius(radius):
    """The raw sigma whose bandwidth s = exp(10 sigma) (my_loss.py:93)
    makes exp(-s d^2) = 1/2 at a distance of ``radius`` grid steps:
    s * (radius * SE_STEP)^2 = ln 2."""
    return math.log(math.log(2) / (radius * SE_STEP)**2) / 10


def spatialemb_outputs(embed_steps, sigmas, seeds):
    """Raw head outputs of a 1 x W map whose pixel j has the embedding
    ``embed_steps[j]`` grid steps: offset atanh((E_j - j) * step), so that
    tanh(offset) + x_j = E_j * step (my_loss.py:46); sigma raw; seed
    logits of the seed probabilities (my_loss.py:48-49)."""
    width = len(embed_steps)
    emb = torch.zeros(1, 3, 1, width, dtype=torch.float64)
    emb[0, 0, 0] = torch.tensor(
        [math.atanh((e - j) * SE_STEP) for j, e in enumerate(embed_steps)])
    emb[0, 2, 0] = torch.tensor(sigmas, dtype=torch.float64)
    seed = torch.tensor([logit(p) for p in seeds]).reshape(1, 1, 1, width)
    return emb.float(), seed.float()


def test_spatialemb_loss_matches_official():
    """A 1 x 8 map: instance A = pixels 0-2, B = pixels 5-6, background 3,
    4, 7; embeddings E (in grid steps) [0.5, 1, 2, 3, 4, 5, 5.5, 7.5]."""
    head = spatialemb_head()
    embed = [0.5, 1., 2., 3., 4., 5., 5.5, 7.5]
    # Mean sigma of A gives s_A d^2 = ln 2 at d = 1 step, of B at d = 2;
    # each instance's sigmas spread around their mean.
    sig_a, sig_b = sigma_for_radius(1.), sigma_for_radius(2.)
    dev_a, dev_b = [-.1, .05, .05], [.1, -.1]
    sigmas = [sig_a + d for d in dev_a] + [0., 0.] + \
        [sig_b + d for d in dev_b] + [0.]
    seeds = [.8, .9, .5, .1, .2, .7, .6, .05]
    emb_preds, seed_preds = spatialemb_outputs(embed, sigmas, seeds)
    masks = np.zeros((2, 1, 8), np.uint8)
    masks[0, 0, 0:3] = 1
    masks[1, 0, 5:7] = 1
    gt = InstanceData(
        labels=torch.tensor([0, 0]), masks=BitmapMasks(masks, 1, 8))
    losses = head.loss_by_feat(emb_preds, seed_preds, [gt],
                               [img_meta((1, 8))])

    # Centres: the GT centroid of the grid (to_center, my_loss.py:74-76):
    # A at 1 step, B at 5.5. Gaussian exp(-s (e - C)^2) with s =
    # exp(10 mean sigma) (:82-86, 93, 96-97): phi_A = 2^-(E - 1)^2,
    # phi_B = 2^-((E - 5.5)^2 / 4).
    phi_a = np.array([2**-((e - 1)**2) for e in embed])
    phi_b = np.array([2**-((e - 5.5)**2 / 4) for e in embed])
    # Lovasz hinge of 2 phi - 1 (:100-101): errors 2 - 2 phi on the
    # instance, 2 phi elsewhere. A: pixel 2 (fg, 1.0), 0 (fg, 0.32), 3
    # (bg, 0.125), 4, 5, 6, 7 (bg, 2^-8 down to 2^-41), 1 (fg, 0).
    label_a = [1, 1, 1, 0, 0, 0, 0, 0]
    err_a = [2 - 2 * p if y else 2 * p for p, y in zip(phi_a, label_a)]
    order_a = [2, 0, 3, 4, 5, 6, 7, 1]
    loss_a = lovasz_hinge_by_hand([err_a[j] for j in order_a],
                                  [label_a[j] for j in order_a])
    # B: pixel 4 (bg, 1.35), 7 (bg, 1.0), 3 (bg, 0.68), 2 (bg, 0.24), 5
    # (fg, 0.085), 1 (bg, 0.060), 0 (bg, 0.026), 6 (fg, 0).
    label_b = [0, 0, 0, 0, 0, 1, 1, 0]
    err_b = [2 - 2 * p if y else 2 * p for p, y in zip(phi_b, label_b)]
    order_b = [4, 7, 3, 2, 5, 1, 0, 6]
    loss_b = lovasz_hinge_by_hand([err_b[j] for j in order_b],
                                  [label_b[j] for j in order_b])
    # Averaged over the instances (:113-115).
    inst = (loss_a + loss_b) / 2
    # Smoothness: mean (sigma - mean sigma)^2 per instance (:88-91),
    # averaged: ((0.01 + 0.0025 + 0.0025) / 3 + 0.01) / 2.
    var = (np.mean(np.square(dev_a)) + np.mean(np.square(dev_b))) / 2
    # Seed: background seeds to 0 (:63-67), instance seeds to phi with
    # foreground weight 10 (:104-105; src/train_config.py:85), / H W
    # (:117).
    seed = (seeds[3]**2 + seeds[4]**2 + seeds[7]**2 + 10 *
            ((seeds[0] - phi_a[0])**2 + (seeds[1] - phi_a[1])**2 +
             (seeds[2] - phi_a[2])**2) + 10 *
            ((seeds[5] - phi_b[5])**2 + (seeds[6] - phi_b[6])**2)) / 8
    # Weights w_inst 1, w_var 10, w_seed 1 (:119; train_config.py:88-90),
    # / batch size 1 (:121).
    assert losses['loss_inst'].item() == pytest.approx(inst, rel=1e-4)
    assert losses['loss_var'].item() == pytest.approx(10 * var, rel=1e-4)
    assert losses['loss_seed'].item() == pytest.approx(seed, rel=1e-4)
    assert sum(losses.values()).item() == pytest.approx(
        inst + 10 * var + seed, rel=1e-4)


def test_spatialemb_clustering_matches_official():
    """A 1 x 20 map: per pixel j, its embedding E_j (in grid steps), the
    radius R_j in steps within which its Gaussian is above 1/2, and its
    seed. Instance A is pixels 1-5 around centre 3 (seed 0.97), instance B
    pixels 6 and 9-13 around centre 11 (seed 0.95); pixel 6 lies next to A
    but is embedded in B. Pixels 0 and 19 are background inside A's and
    B's Gaussians. Pixels 7 (0.92) and 8 (0.93) are centres the official
    rules reject; 14-18 are foreground that never becomes a centre.
    """
    embed = [3.0, 2.6, 2.9, 3.0, 3.3, 3.95, 10.5, 7.0, 4.4, 10.0, 10.8,
             11.0, 11.4, 12.2, 4.6, 20., 22., 24., 26., 11.0]
    radius = [1.] * 6 + [1.5, .3, .5] + [1.5] * 5 + [1.] * 6
    seeds = [.10, .80, .85, .97, .88, .60, .75, .92, .93, .70, .89, .95,
             .80, .65, .70, .60, .60, .60, .60, .30]
    # The official test script's seed threshold 0.9 (SE: src/test.py:68);
    # the official minimum size 128 (src/utils/utils.py:151, 160, 174) is 2
    # on this 20-pixel map.
    head = spatialemb_head(
        seed_thr=0.9, fg_thr=0.5, mask_thr=0.5, min_pixels=2)
    emb_preds, seed_preds = spatialemb_outputs(
        embed, [sigma_for_radius(r) for r in radius], seeds)
    results = head.predict_by_feat(emb_preds, seed_preds,
                                   [img_meta((1, 20))])[0]

    # The official loop (utils.py:136-187): foreground is seed > 0.5
    # (:149), pixels 1-18. While more than 2 are unclustered (:160): the
    # unclustered pixel of highest seed is the centre if its seed >= 0.9
    # (:162-165) and leaves the unclustered set at once (:167); its
    # proposal is the foreground pixels with exp(-s_c (e - e_c)^2) > 0.5,
    # its own embedding and sigma (:166-172), i.e. |E - E_c| < R_c; kept
    # if larger than 2 with more than half of it unclustered (:174-175);
    # its pixels leave the unclustered set either way (:183).
    # - centre 3 (0.97): |E - 3| < 1 -> {1, 2, 3, 4, 5} (pixel 0 is not
    #   foreground, 8 and 14 are 1.4 and 1.6 away); 4 of 5 unclustered:
    #   instance A, score 0.97. 13 left.
    # - centre 11 (0.95): |E - 11| < 1.5 -> {6, 9, 10, 11, 12, 13} (not 19,
    #   background); 5 of 6: instance B, score 0.95. 7 left: 7, 8, 14-18.
    # - centre 8 (0.93): |E - 4.4| < 0.5 -> {5, 8, 14}; 8 itself is already
    #   clustered, so 1 of 3 (2 of 3 had it not been): rejected. 5 left.
    # - centre 7 (0.92): {7}, 1 pixel: rejected. 4 left.
    # - the best unclustered seed is 0.60 < 0.9: stop.
    expected = np.zeros((2, 1, 20), bool)
    expected[0, 0, 1:6] = True
    expected[1, 0, [6, 9, 10, 11, 12, 13]] = True
    assert results.masks.shape == (2, 1, 20)
    assert (results.masks.numpy() == expected).all()
    assert results.scores.tolist() == pytest.approx([.97, .95], abs=1e-6)
    assert results.labels.tolist() == [0, 0]
