"""EmbedMaskHead: its maths against brute force and hand-derived values,
FCOS targets against mmdet's, losses, gradients and predictions."""
import math

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmdet_pep.models.dense_heads.embedmask_head import (
    MAX_MASK_LOGIT, OUTSIDE_LOG_PROB, best_proposal_per_gt,
    embedding_log_probs, log_probs_to_logits)
from mmdet_pep.models.losses import lovasz_hinge
from mmdet_pep.models.utils import levels_to_points
from pep_testing import (FCOS_STRIDES, TINY_REGRESS_RANGES, built,
                         fcos_feats, img_meta, make_gt, tiny_fcos_head)

STRIDES = list(FCOS_STRIDES)
RANGES = TINY_REGRESS_RANGES


def head_cfg(**overrides):
    return tiny_fcos_head(
        'EmbedMaskHead', **dict(dict(test_cfg=dict(nms_pre=100, max_per_img=20)),
                           **overrides))


def build(**overrides):
    return built(head_cfg(**overrides))


feats = fcos_feats


# The maths -------------------------------------------------------------------


def test_log_probs_equal_the_broadcast_definition():
    torch.manual_seed(0)
    pixel = torch.randn(5, 6, 7) * 3
    q = torch.randn(4, 5) * 3
    m = torch.rand(4, 5) + 0.1
    expected = -(m[:, :, None, None] *
                 (pixel[None] - q[:, :, None, None])**2).sum(1)
    got = embedding_log_probs(pixel, q, m)
    assert got.shape == (4, 6, 7)
    assert torch.allclose(got, expected, atol=1e-4)
    # A pixel whose embedding is the proposal's has p = 1 exactly.
    pixel[:, 2, 3] = q[1]
    assert embedding_log_probs(pixel, q, m)[1, 2, 3] == 0
    assert embedding_log_probs(pixel, q[:0], m[:0]).shape == (0, 6, 7)


def test_log_probs_stay_float32_under_autocast():
    """Coordinates of ~13 units (1333 px / 100) and trained-size margins:
    the expanded distances lose whole units in bf16."""
    torch.manual_seed(0)
    ys, xs = torch.meshgrid(torch.linspace(0, 8, 20),
                            torch.linspace(0, 13, 30), indexing='ij')
    pixel = torch.cat([torch.stack([xs, ys]), torch.randn(14, 20, 30)])
    q = torch.cat([torch.tensor([[6.5, 4.]]), torch.randn(1, 14)], 1)
    m = torch.full((1, 16), 20.)
    ref = -(m[0, :, None, None] * (pixel.double() - q[0, :, None, None])**2
            ).sum(0)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = embedding_log_probs(pixel.bfloat16().float(), q, m)
    assert got.dtype == torch.float32
    ref = -(m[0, :, None, None] *
            (pixel.bfloat16().double() - q[0, :, None, None])**2).sum(0)
    assert torch.allclose(got[0].double(), ref, rtol=1e-5, atol=1e-3)


def test_logits_of_log_probs():
    p = torch.tensor([1e-12, 1e-9, 0.1, 0.5, 0.53, 0.9, 1 - 1e-6, 1.0])
    logits = log_probs_to_logits(p.double().log())
    # logit(p) = ln(p / (1 - p)), clamped to p in [1e-9, 1 - 1e-9].
    assert logits[2:7].tolist() == pytest.approx(
        [math.log(v / (1 - v)) for v in p[2:7].double().tolist()], rel=1e-6)
    assert logits[0] == -MAX_MASK_LOGIT and logits[-1] == MAX_MASK_LOGIT
    assert logits[1] == pytest.approx(-MAX_MASK_LOGIT)
    assert MAX_MASK_LOGIT == pytest.approx(20.7233, abs=1e-4)
    # At p = 1 exactly (a pixel on its proposal) the gradient stays finite.
    log_p = torch.zeros(3, requires_grad=True)
    log_probs_to_logits(log_p).sum().backward()
    assert torch.isfinite(log_p.grad).all()


def test_best_proposal_per_gt_by_hand():
    # Positives 0..4 belong to GTs 1, 0, 1, 1, 3; GT 2 has none.
    ious = torch.tensor([0.3, 0.5, 0.9, 0.9, 0.0])
    gt_inds = torch.tensor([1, 0, 1, 1, 3])
    best, gts = best_proposal_per_gt(ious, gt_inds, num_gts=4)
    # GT 0: its only positive 1; GT 1: 2 and 3 tie at 0.9, the first wins;
    # GT 3: its positive with IoU 0 still beats the other GTs' -1.
    assert best.tolist() == [1, 2, 4]
    assert gts.tolist() == [0, 1, 3]
    best, gts = best_proposal_per_gt(ious[:0], gt_inds[:0], num_gts=2)
    assert best.numel() == 0 and gts.numel() == 0
    best, gts = best_proposal_per_gt(
        torch.tensor([0.4]), torch.tensor([2]), num_gts=3)
    assert best.tolist() == [0] and gts.tolist() == [2]


def test_levels_to_points_order_is_the_prior_generators():
    head = build()
    maps = [torch.arange(2 * 3 * h * w, dtype=torch.float32).reshape(
        2, 3, h, w) for h, w in ((4, 5), (2, 3))]
    flat = levels_to_points(maps)
    assert flat.shape == (2, 4 * 5 + 2 * 3, 3)
    gen = head.prior_generator
    points = torch.cat([
        gen.single_level_grid_priors((4, 5), 0, device='cpu'),
        gen.single_level_grid_priors((2, 3), 1, device='cpu')
    ])
    # Point k of level 0 is at ((col + 0.5) * 8, (row + 0.5) * 8).
    k = 7  # row 1, column 2
    assert points[k].tolist() == [20., 12.]
    assert flat[1, k].tolist() == maps[0][1, :, 1, 2].tolist()
    assert flat[0, 20 + 4].tolist() == maps[1][0, :, 1, 1].tolist()


def test_positions_in_the_spatial_dimensions():
    head = build()
    embed = torch.zeros(1, 16, 3, 4)
    out = head._add_positions(embed, stride=8)
    # (x, y) of cell (row i, column j) is ((j + 0.5) * 8, (i + 0.5) * 8)
    # pixels, / 16 px per unit, times the learned scale (1 at init).
    assert out[0, 0, 2, 3] == (3.5 * 8) / 16
    assert out[0, 1, 2, 3] == (2.5 * 8) / 16
    assert out[0, 2:].abs().sum() == 0
    head.position_scale.scale.data.fill_(2.)
    assert head._add_positions(embed, 8)[0, 0, 0, 1] == 2 * 1.5 * 8 / 16
    assert torch.equal(build(spatial_aware=False)._add_positions(embed, 8),
                       embed)


def test_prior_margin_gives_one_half_at_its_distance():
    head = build(prior_margin=2.)
    # exp(bias) * 2^2 = ln 2.
    assert torch.allclose(head.conv_margin.bias.exp() * 4,
                          torch.full((16, ), math.log(2)))
    with torch.no_grad():
        head.conv_margin.weight.zero_()
        _, _, _, _, margins = head.forward_single(
            torch.randn(1, 16, 4, 4), head.scales[0], 8,
            head.margin_scales[0])
    q = torch.zeros(1, 16)
    pixel = torch.zeros(16, 1, 2)
    pixel[0, 0, 1] = 2.  # two units along the first spatial dimension
    p = embedding_log_probs(pixel, q, margins[0, :, 0, 0][None]).exp()
    assert p[0, 0].tolist() == pytest.approx([1.0, 0.5])


def test_forward_shapes():
    head = build()
    cls, bbox, ctr, embeds, margins, pixel = head(feats(2, (64, 96)))
    assert [c.shape[-2:] for c in cls] == [(8, 12), (4, 6), (2, 3), (1, 2),
                                           (1, 1)]
    assert embeds[0].shape == margins[0].shape == (2, 16, 8, 12)
    assert all((m > 0).all() for m in margins)
    # Stride 4: twice P3's size.
    assert pixel.shape == (2, 16, 16, 24)


@pytest.mark.parametrize('training,switches', [
    (True, {}),
    (False, {}),
    (True, dict(centerness_on_reg=False, norm_on_bbox=False,
                spatial_aware=False)),
])
def test_forward_single_and_pixel_branch_by_their_definitions(
        training, switches):
    """Every output rebuilt from the submodules: FCOS's outputs with
    centerness on the box tower, the embedding conv on the box tower plus
    positions, exp of the margin conv on box tower / 32 with the level scale
    on the two spatial dimensions, and the pixel branch upsampled x2 (8 in,
    16 out channels)."""
    head = build(in_channels=8, **switches)
    head.train(training)
    on_reg = switches.get('centerness_on_reg', True)
    norm = switches.get('norm_on_bbox', True)
    spatial = switches.get('spatial_aware', True)
    for scale in head.margin_scales:
        scale.scale.data.fill_(1.7)  # not 1, so that it shows
    torch.manual_seed(1)
    x = torch.randn(2, 8, 5, 6)
    cls, bbox, ctr, embed, margin = head.forward_single(
        x, head.scales[1], 16, head.margin_scales[1])
    with torch.no_grad():
        cls_feat, reg_feat = x, x
        for layer in head.cls_convs:
            cls_feat = layer(cls_feat)
        for layer in head.reg_convs:
            reg_feat = layer(reg_feat)
        assert torch.allclose(cls, head.conv_cls(cls_feat))
        distances = head.scales[1](head.conv_reg(reg_feat))
        if norm:
            distances = distances.clamp(min=0) * (1 if training else 16)
        else:
            distances = distances.exp()
        assert torch.allclose(bbox, distances)
        assert torch.allclose(
            ctr, head.conv_centerness(reg_feat if on_reg else cls_feat))
        ys, xs = torch.meshgrid((torch.arange(5) + 0.5) * 16,
                                (torch.arange(6) + 0.5) * 16,
                                indexing='ij')
        raw = head.conv_embed(reg_feat)
        if spatial:
            raw[:, 0] += xs / 16
            raw[:, 1] += ys / 16
        assert torch.allclose(embed, raw)
        raw = head.conv_margin(reg_feat / 32)
        if spatial:
            raw[:, :2] *= 1.7
        assert torch.allclose(margin, raw.exp())

        pixel = head.forward_pixel(x)
        feat = x
        for layer in head.mask_convs:
            feat = layer(feat)
        raw = torch.nn.functional.interpolate(
            head.conv_pixel_embed(feat), scale_factor=2, mode='bilinear',
            align_corners=False)
        ys, xs = torch.meshgrid((torch.arange(10) + 0.5) * 4,
                                (torch.arange(12) + 0.5) * 4,
                                indexing='ij')
        if spatial:
            raw[:, 0] += xs / 16
            raw[:, 1] += ys / 16
        assert torch.allclose(pixel, raw)
    # A pixel branch at P3's own stride is not upsampled.
    assert build(mask_stride=8,
                 in_channels=8).forward_pixel(x).shape[-2:] == (5, 6)


# Targets ---------------------------------------------------------------------


def points_of(head, shape, level_ranges=RANGES):
    """All levels' points of an input of ``shape``, each point's regress
    range, and the number of points per level."""
    sizes = [(-(-shape[0] // s), -(-shape[1] // s)) for s in STRIDES]
    pts = head.prior_generator.grid_priors(sizes, device='cpu')
    ranges = torch.cat([
        p.new_tensor(r)[None].expand(len(p), 2)
        for p, r in zip(pts, level_ranges)
    ])
    return torch.cat(pts), ranges, [len(p) for p in pts]


@pytest.mark.parametrize('boxes', [
    [[4, 4, 30, 20], [20, 10, 60, 60], [2, 30, 18, 46]],
    # Points exactly on the box sides at stride 8 (4 and 20) with a max
    # distance of exactly 16 (the top of P3's range); and a P4 point (24,
    # 24) at exactly 16 from the sides of [8, 8, 40, 40] (P4's lower end).
    [[4, 4, 20, 20], [8, 36, 40, 60]],
    [[8, 8, 40, 40]],
])
def test_targets_equal_mmdets_fcos_without_sample_in_mask(boxes):
    head = build(sample_in_mask=False)
    fcos = FCOSHead(
        3, 16, strides=STRIDES, regress_ranges=RANGES, center_sampling=True)
    gt = make_gt(boxes, [0, 1, 1][:len(boxes)])
    points, ranges, num = points_of(head, (64, 64))
    labels, targets, pos_inds, pos_gt_inds = head._get_targets_single(
        gt, points, ranges, num)
    del gt.masks  # mmdet's FCOS centres on the box when there are no masks
    ref_labels, ref_targets = fcos._get_targets_single(gt, points, ranges,
                                                       num)
    assert torch.equal(labels, ref_labels)
    assert torch.equal(targets, ref_targets)
    assert torch.equal(pos_inds, (labels < 3).nonzero().reshape(-1))
    assert (labels[pos_inds] == gt.labels[pos_gt_inds]).all()
    assert len(pos_inds) > 0


def brute_force_targets(points, boxes, labels, strides, ranges, radius):
    """FCOS assignment point by point: among the GTs whose (centre-sampled)
    box strictly contains the point and whose max distance is in the
    point's range, the smallest box area wins."""
    out_labels, out_gts = [], []
    for (x, y), s, (lo, hi) in zip(points.tolist(), strides, ranges):
        best = None
        for g, (x1, y1, x2, y2) in enumerate(boxes):
            if radius is None:
                cx1, cy1, cx2, cy2 = x1, y1, x2, y2
            else:
                cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, s * radius
                cx1, cy1 = max(cx - r, x1), max(cy - r, y1)
                cx2, cy2 = min(cx + r, x2), min(cy + r, y2)
            if not (cx1 < x < cx2 and cy1 < y < cy2):
                continue
            if not lo <= max(x - x1, y - y1, x2 - x, y2 - y) <= hi:
                continue
            area = (x2 - x1) * (y2 - y1)
            if best is None or area < best[0]:
                best = (area, g)
        out_labels.append(3 if best is None else labels[best[1]])
        out_gts.append(None if best is None else best[1])
    return out_labels, out_gts


@pytest.mark.parametrize('grid', [4, 1])
@pytest.mark.parametrize('center_sampling', [True, False])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_targets_equal_a_brute_force_assignment(center_sampling, seed, grid):
    """Random boxes on a 4 px grid, so that points (4 + 8 k) fall on box
    sides, or on a 1 px grid (points 1 px inside a side), with wide
    overlapping ranges so that many points see several GTs and the
    smallest area must win."""
    rng = np.random.default_rng(seed)
    ranges = ((-1, 24), (8, 48), (16, 96), (32, 192), (64, 1e8))
    head = build(sample_in_mask=False, center_sampling=center_sampling,
                 regress_ranges=ranges)
    corners = rng.integers(0, 64 // grid + 1, size=(8, 2, 2)) * grid
    boxes = np.concatenate([corners.min(1), corners.max(1) + 4], 1)
    labels = rng.integers(0, 3, size=8).tolist()
    gt = make_gt(boxes.tolist(), labels)
    points, point_ranges, num = points_of(head, (64, 64), ranges)
    strides = [s for n, s in zip(num, STRIDES) for _ in range(n)]
    got_labels, _, pos_inds, pos_gt_inds = head._get_targets_single(
        gt, points, point_ranges, num)
    exp_labels, exp_gts = brute_force_targets(
        points, boxes.tolist(), labels, strides, point_ranges.tolist(),
        1.5 if center_sampling else None)
    assert got_labels.tolist() == exp_labels
    assert pos_gt_inds.tolist() == [g for g in exp_gts if g is not None]
    # Several GTs compete for some points (the smallest-area rule bites).
    assert len(pos_inds) > 10


def test_empty_gt_targets():
    head = build()
    points, ranges, num = points_of(head, (64, 64))
    labels, targets, pos_inds, pos_gt_inds = head._get_targets_single(
        make_gt(np.zeros((0, 4)), []), points, ranges, num)
    assert labels.tolist() == [3] * len(points)
    assert targets.shape == (len(points), 4) and not targets.any()
    assert pos_inds.shape == (0, ) and pos_gt_inds.shape == (0, )
    assert pos_inds.dtype == pos_gt_inds.dtype == torch.long


def test_sample_in_mask_drops_points_outside_the_mask():
    # A 32 px box whose mask is only its left half.
    gt = make_gt([[0, 0, 32, 32]], [2])
    gt.masks.masks[0, :, 16:] = 0
    head = build(center_sampling=False)
    points, ranges, num = points_of(head, (64, 64))
    labels, _, pos_inds, pos_gt_inds = head._get_targets_single(
        gt, points, ranges, num)
    box_labels, *_ = build(
        center_sampling=False, sample_in_mask=False)._get_targets_single(
            gt, points, ranges, num)
    # By hand: the box's points in range are those of P4 (stride 16, max
    # distance 16-32): (8, 8), (24, 8), (8, 24), (24, 24), indices 64, 65,
    # 68, 69 (P3 has 8 x 8 points, P4 rows of 4). The mask keeps x = 8.
    assert (box_labels < 3).nonzero().reshape(-1).tolist() == [64, 65, 68,
                                                               69]
    assert pos_inds.tolist() == [64, 68]
    assert pos_gt_inds.tolist() == [0, 0] and labels[64] == 2


def test_points_beyond_the_mask_canvas_are_outside():
    head = build(center_sampling=False)
    # Only the last column and the last row of a 24 x 24 canvas are set.
    gt = make_gt([[0, 0, 24, 24]], [0], shape=(24, 24))
    gt.masks.masks[0, :-1, :-1] = 0
    points = torch.tensor([[4., 4.], [23.5, 4.], [4., 23.5], [24., 4.],
                           [4., 24.], [28., 28.]])
    inside = head._points_in_masks(gt, points)
    assert inside[:, 0].tolist() == [False, True, True, False, False, False]


def test_missing_masks_fail_with_a_clear_error():
    head = build()
    gt = make_gt([[4, 4, 30, 20]], [0])
    del gt.masks
    points, ranges, num = points_of(head, (64, 64))
    with pytest.raises(ValueError, match='gt_instances.masks'):
        head._get_targets_single(gt, points, ranges, num)


def test_mask_targets_dilate_as_bilinear_and_greater_than_zero():
    head = build()
    masks = np.zeros((2, 32, 32), np.uint8)
    masks[0, 8:16, 8:16] = 1
    masks[1, 6:18, 6:18] = 1
    gt = make_gt([[8, 8, 16, 16], [6, 6, 18, 18]], [0, 0], shape=(32, 32))
    gt.masks.masks[:] = masks
    targets = head._mask_targets(gt, torch.tensor([0, 1]), (8, 8))
    # Cell i samples rows 4i + 1 and 4i + 2 (bilinear, align_corners=False
    # at 1/4): rows 8-15 set cells 2-3; rows 6-17 set cells 1-4.
    expected = torch.zeros(2, 8, 8)
    expected[0, 2:4, 2:4] = 1
    expected[1, 1:5, 1:5] = 1
    assert torch.equal(targets, expected)
    # One pixel at (9, 9) is a quarter of cell (2, 2)'s bilinear sample.
    dot = make_gt([[9, 9, 10, 10]], [0], shape=(32, 32))
    dot_targets = head._mask_targets(dot, torch.tensor([0]), (8, 8))[0]
    assert dot_targets.nonzero().tolist() == [[2, 2]]
    # A mask smaller than the map's extent is padded at the bottom right,
    # a larger one cropped.
    small = make_gt([[0, 0, 8, 8]], [0], shape=(16, 16))
    small_targets = head._mask_targets(small, torch.tensor([0]), (8, 8))[0]
    assert small_targets[:2, :2].all() and small_targets.sum() == 4
    large = make_gt([[0, 0, 36, 36]], [0], shape=(36, 36))
    assert torch.equal(
        head._mask_targets(large, torch.tensor([0]), (8, 8)),
        torch.ones(1, 8, 8))
    # Non-square: 20 x 44 masks on an 8 x 10 map (32 x 40 px): rows kept,
    # columns cropped.
    wide = make_gt([[0, 0, 44, 20]], [0], shape=(20, 44))
    wide_targets = head._mask_targets(wide, torch.tensor([0]), (8, 10))[0]
    expected = torch.zeros(8, 10)
    expected[:5] = 1  # cell 4 samples rows 17 and 18
    assert torch.equal(wide_targets, expected)
    # 36 x 20 masks on the same map: columns kept, rows cropped.
    tall = make_gt([[0, 0, 20, 36]], [0], shape=(36, 20))
    tall_targets = head._mask_targets(tall, torch.tensor([0]), (8, 10))[0]
    expected = torch.zeros(8, 10)
    expected[:, :5] = 1
    assert torch.equal(tall_targets, expected)


# Losses ----------------------------------------------------------------------


def gt_batch():
    crowded = make_gt([[4, 4, 28, 28], [26, 4, 50, 28], [10, 26, 34, 50]],
                      [1, 1, 1], shape_kind='disc')
    one = make_gt([[8, 8, 40, 56]], [0])
    empty = make_gt(np.zeros((0, 4)), [])
    # The empty image in the middle: the images after it count too.
    return [crowded, empty, one]


def loss_of(head, gts):
    outs = head(feats(len(gts)))
    return head.loss_by_feat(*outs, gts, [img_meta()] * len(gts))


def test_losses_finite_and_reach_every_parameter():
    head = build()
    losses = loss_of(head, gt_batch())
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask'
    }
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_mask'] > 0
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert missing == []
    assert not hasattr(head, '_assignment')


def test_empty_gt_gives_zero_mask_loss_and_every_gradient():
    head = build()
    losses = loss_of(head, [make_gt(np.zeros((0, 4)), [])] * 2)
    assert losses['loss_mask'] == 0
    assert losses['loss_bbox'] == 0 and losses['loss_cls'] > 0
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())
    assert head.conv_pixel_embed.weight.grad.abs().sum() == 0


def test_mask_loss_equals_a_brute_force_reference():
    """Per image: the best positive of each GT by IoU of its predicted box,
    p by broadcasting, Lovasz hinge of logit(p); mean over the image's GTs,
    then over all images (the empty one counts), times 0.5."""
    head = build()
    with torch.no_grad():  # boxes of ~1.5 strides, so the IoUs differ
        head.conv_reg.bias.fill_(1.5)
    gts = gt_batch()
    outs = head(feats(len(gts)))
    losses = head.loss_by_feat(*outs, gts, [img_meta()] * 3)

    cls, bbox, ctr, embeds, margins, pixel = outs
    sizes = [c.shape[-2:] for c in cls]
    mlvl_points = head.prior_generator.grid_priors(sizes, device='cpu')
    points = torch.cat(mlvl_points)
    _, _, pos_list, gt_list = head._batched_targets(mlvl_points, gts)
    total = 0.
    ious_seen = set()
    for i, gt in enumerate(gts):
        if len(pos_list[i]) == 0:
            continue
        per_gt = {}
        for pos, g in zip(pos_list[i].tolist(), gt_list[i].tolist()):
            lvl = int(np.searchsorted(np.cumsum([h * w for h, w in sizes]),
                                      pos, side='right'))
            start = sum(h * w for h, w in sizes[:lvl])
            h, w = sizes[lvl]
            r, c = divmod(pos - start, w)
            d = bbox[lvl][i, :, r, c].detach() * STRIDES[lvl]
            x, y = points[pos].tolist()
            box = [x - d[0], y - d[1], x + d[2], y + d[3]]
            gx1, gy1, gx2, gy2 = gt.bboxes[g].tolist()
            iw = max(0., min(box[2], gx2) - max(box[0], gx1))
            ih = max(0., min(box[3], gy2) - max(box[1], gy1))
            inter = iw * ih
            union = ((box[2] - box[0]) * (box[3] - box[1]) +
                     (gx2 - gx1) * (gy2 - gy1) - inter)
            iou = float(inter / union)
            ious_seen.add(round(iou, 4))
            if g not in per_gt or iou > per_gt[g][0]:
                per_gt[g] = (iou, lvl, r, c)
        image_losses = []
        for g, (_, lvl, r, c) in sorted(per_gt.items()):
            q = embeds[lvl][i, :, r, c]
            m = margins[lvl][i, :, r, c]
            p = torch.exp(-(m[:, None, None] *
                            (pixel[i] - q[:, None, None])**2).sum(0))
            p = p.clamp(1e-9, 1 - 1e-9)
            target = head._mask_targets(gt, torch.tensor([g]),
                                        p.shape)[0]
            image_losses.append(
                lovasz_hinge(torch.log(p / (1 - p))[None], target[None])[0])
        total = total + torch.stack(image_losses).mean()
    expected = 0.5 * total / len(gts)
    assert torch.allclose(losses['loss_mask'], expected, rtol=1e-4)
    assert len(ious_seen) > 3  # the choice of proposal is not a tie


# Predictions -----------------------------------------------------------------


def test_masks_by_hand_a_disc_cut_by_the_padded_box():
    """2-d spatial embeddings equal to the pixel positions / 16 and one
    proposal at (24, 24) px with margin k: log p = -k r^2 / 256 at distance
    r px, so p > 0.53 inside r0 = 16 sqrt(-ln 0.53 / k) = 10 px for
    k = 1.6243."""
    head = build(embed_dim=2)
    k = -math.log(0.53) * 256 / 100
    ys, xs = torch.meshgrid(
        (torch.arange(16) + 0.5) * 4, (torch.arange(16) + 0.5) * 4,
        indexing='ij')
    pixel = torch.stack([xs, ys]) / 16
    cfg = ConfigDict(head.test_cfg)

    def masks_for(box):
        det = InstanceData(
            bboxes=torch.tensor([box]),
            embeds=torch.tensor([[1.5, 1.5]]),
            margins=torch.tensor([[k, k]]))
        return head._predict_masks(det, pixel, img_meta(), cfg, False)[0]

    mask = masks_for([0., 0., 64., 64.])
    yy, xx = np.mgrid[:64, :64] + 0.5
    r = np.hypot(xx - 24, yy - 24)
    # Bilinear upsampling of the log-probabilities blurs the edge by less
    # than a 4 px cell.
    assert mask.numpy()[r < 8].all()
    assert not mask.numpy()[r > 12].any()
    # A small box cuts the disc: log p = -10 at cells whose centre is more
    # than 2 cells (8 px) from the box, and the upsampling reaches at most
    # half a cell (2 px) further in.
    small = masks_for([20., 20., 28., 28.]).numpy()
    assert small[r < 8].all()  # the disc fits in the padded box here
    cut = masks_for([22., 22., 23., 23.]).numpy()
    ys_in, xs_in = np.nonzero(cut)
    assert xs_in.min() >= 22 - 8 - 2 and xs_in.max() < 23 + 8 + 2
    assert cut[24, 24] and cut.sum() < mask.numpy().sum()
    assert OUTSIDE_LOG_PROB < math.log(0.53)


def test_padded_box_mask_exactly():
    """p = 1 everywhere (zero margins): the mask is the cells whose centre
    lies within 2 cells (8 px) of the box, after the bilinear x4
    upsampling of 0 inside / -10 outside. Cell k has its centre at 4 k + 2;
    box [22, 22, 30, 30] padded to [14, 38] keeps cells 3-9 (centres 14 and
    38 exactly on the edges count). An output pixel p samples the cell map
    at (p + 0.5) / 4 - 0.5; between an inside and an outside cell it reads
    -10 x (0.125, 0.375, 0.625 or 0.875) < ln 0.53, so only pixels that
    sample inside cells alone are kept: 4 * 3 + 2 = 14 to 4 * 9 + 1 = 37."""
    head = build(embed_dim=2)
    det = InstanceData(
        bboxes=torch.tensor([[22., 22., 30., 30.]]),
        embeds=torch.zeros(1, 2),
        margins=torch.zeros(1, 2))
    mask = head._predict_masks(det, torch.randn(2, 16, 16), img_meta(),
                               ConfigDict(head.test_cfg), False)[0]
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[14:38, 14:38] = True
    assert torch.equal(mask, expected)


def predict(head, outs, metas, **kw):
    head.eval()
    with torch.no_grad():
        return head.predict_by_feat(*outs, batch_img_metas=metas, **kw)


def confident_outs(head, shape=(64, 64)):
    """Head outputs with every class score high (logit 5)."""
    outs = list(head(feats(1, shape)))
    outs[0] = [torch.full_like(c, 5.) for c in outs[0]]
    return outs


def test_predictions_have_masks_at_ori_shape_and_real_boxes():
    head = build()
    head.eval()
    outs = confident_outs(head, (64, 64))
    meta = dict(img_meta(), ori_shape=(128, 96), scale_factor=(0.75, 0.5))
    res, = predict(head, outs, [meta], rescale=True)
    assert 0 < len(res) <= 20
    assert res.masks.shape == (len(res), 128, 96)
    assert res.masks.dtype == torch.bool
    assert set(res.keys()) == {'bboxes', 'scores', 'labels', 'masks'}
    assert (res.scores[:-1] >= res.scores[1:]).all()
    same, = predict(head, outs, [img_meta()], rescale=False)
    assert same.masks.shape[1:] == (64, 64)
    # Without rescale (the default) masks stay at img_shape.
    default, = predict(head, outs, [meta])
    assert default.masks.shape[1:] == (64, 64)
    assert same.bboxes.min() >= 0 and same.bboxes.max() <= 64
    assert torch.allclose(res.bboxes, same.bboxes / torch.tensor(
        [0.75, 0.5, 0.75, 0.5]))
    # Boxes are FCOS's own (not zeros), clipped to the image.
    assert (res.bboxes[:, 2:] >= res.bboxes[:, :2]).all()
    assert (res.bboxes[:, 2:] > res.bboxes[:, :2]).any()


def test_boxes_are_clipped_to_the_image():
    head = build()
    outs = confident_outs(head)
    outs[1] = [torch.full_like(b, 50.) for b in outs[1]]  # 50 px each way
    res, = predict(head, outs, [img_meta()])
    assert len(res) == 3  # one per class after NMS: all boxes coincide
    assert res.bboxes.tolist() == [[0., 0., 64., 64.]] * 3


def test_rescaled_masks_are_the_bilinear_log_probs_at_ori_shape():
    """rescale: the img_shape log-probability map (0 in the padded box,
    -10 outside, upsampled as in test_padded_box_mask_exactly) resized
    bilinearly (align_corners=False) to ori_shape, then thresholded."""
    head = build(embed_dim=2)
    det = InstanceData(
        bboxes=torch.tensor([[22., 22., 30., 30.]]),
        embeds=torch.zeros(1, 2),
        margins=torch.zeros(1, 2))
    cfg = ConfigDict(head.test_cfg)
    # Upsampled 3x, where align_corners=True would move the border.
    meta = dict(img_meta(), ori_shape=(200, 150),
                scale_factor=(150 / 64, 200 / 64))
    got = head._predict_masks(det, torch.randn(2, 16, 16), meta, cfg, True)
    cells = torch.full((1, 1, 16, 16), OUTSIDE_LOG_PROB)
    cells[..., 3:10, 3:10] = 0
    fine = torch.nn.functional.interpolate(
        cells, size=(64, 64), mode='bilinear', align_corners=False)
    ori = torch.nn.functional.interpolate(
        fine, size=(200, 150), mode='bilinear', align_corners=False)[0]
    assert torch.equal(got, ori > math.log(0.53))
    assert got.shape == (1, 200, 150) and got.any()


def test_scores_are_cls_times_centerness_and_nms_is_classwise():
    head = build(test_cfg=dict(nms=dict(type='nms', iou_threshold=0.6),
                               max_per_img=1000, nms_pre=1000))
    head.eval()
    outs = confident_outs(head)
    res, = predict(head, outs, [img_meta()])
    ctr = torch.cat([c[0].flatten() for c in outs[2]]).sigmoid()
    possible = torch.sigmoid(torch.tensor(5.)) * ctr
    for s in res.scores:
        assert torch.isclose(possible, s).any()
    # With every class equally confident, each class keeps its own boxes.
    assert set(res.labels.tolist()) == {0, 1, 2}


def test_nothing_above_threshold_gives_typed_empty_results():
    head = build()
    outs = list(head(feats(1)))
    outs[0] = [torch.full_like(c, -20.) for c in outs[0]]
    meta = dict(img_meta(), ori_shape=(128, 96), scale_factor=(0.5, 0.75))
    res, = predict(head, outs, [meta], rescale=True)
    assert len(res) == 0
    assert res.masks.shape == (0, 128, 96) and res.masks.dtype == torch.bool
    res, = predict(head, outs, [meta], rescale=False)
    assert res.masks.shape == (0, 64, 64)
    res, = predict(head, outs, [img_meta()], rescale=True)
    assert res.masks.shape == (0, 64, 64) and res.masks.dtype == torch.bool
    assert res.bboxes.shape == (0, 4)
    assert res.scores.shape == (0, ) and res.labels.shape == (0, )
    assert res.labels.dtype == torch.long


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_nan_or_inf_features_give_no_detections(value):
    head = build()
    head.eval()
    with torch.no_grad():
        outs = head(feats(1, fill=value))
    res, = predict(head, outs, [img_meta()])
    assert len(res) == 0 and res.masks.shape == (0, 64, 64)


def test_test_cfg_is_completed_and_checked():
    head = build(test_cfg=dict(score_thr=0.3))
    assert head.test_cfg.score_thr == 0.3
    assert head.test_cfg.mask_thr == 0.53 and head.test_cfg.box_padding == 2
    assert head.test_cfg.nms.iou_threshold == 0.6
    with pytest.raises(ValueError, match='mask_thr'):
        build(test_cfg=dict(mask_thr=53))
    with pytest.raises(ValueError, match='mask_stride'):
        build(mask_stride=3)
    with pytest.raises(ValueError, match='mask_stride'):
        build(mask_stride=16)
    with pytest.raises(ValueError, match='position_divisor'):
        build(position_divisor=0)
    with pytest.raises(ValueError, match='prior_margin'):
        build(prior_margin=0)
    for bad in (0, 1.0):
        with pytest.raises(ValueError, match='mask_thr'):
            build(test_cfg=dict(mask_thr=bad))
    with pytest.raises(ValueError, match='embed_dim'):
        build(embed_dim=1)
    assert build(embed_dim=1, spatial_aware=False).embed_dim == 1
    assert build(embed_dim=2).embed_dim == 2
    assert build(position_divisor=0.5, prior_margin=0.5).prior_margin == 0.5
    # A cfg given to predict_by_feat is completed from the defaults too.
    head = build()
    outs = confident_outs(head)
    res, = predict(head, outs, [img_meta()], cfg=dict(score_thr=0.5,
                                                      max_per_img=3))
    assert len(res) == 3 and res.masks.shape == (3, 64, 64)
    res, = predict(head, outs, [img_meta()], cfg=dict(score_thr=0.999))
    assert len(res) == 0
    with pytest.raises(ValueError, match='with NMS'):
        predict(build(), build()(feats(1)), [img_meta()], with_nms=False)


def test_official_defaults():
    head = MODELS.build(dict(type='EmbedMaskHead', num_classes=80,
                             in_channels=256))
    assert head.embed_dim == 16 and head.spatial_aware
    assert head.position_divisor == 100 and head.prior_margin == 2
    assert head.margin_reduce_factor == 32 and head.mask_stride == 4
    assert head.num_mask_convs == 4 and head.sample_in_mask
    assert head.center_sampling and head.center_sample_radius == 1.5
    assert head.norm_on_bbox and head.centerness_on_reg
    assert type(head.loss_bbox).__name__ == 'GIoULoss'
    assert type(head.loss_mask).__name__ == 'LovaszHingeLoss'
    assert head.loss_mask.loss_weight == 0.5
    assert head.test_cfg.mask_thr == 0.53
    assert head.test_cfg.score_thr == 0.05 and head.test_cfg.nms_pre == 1000
    assert head.test_cfg.max_per_img == 100
    assert list(head.strides) == [8, 16, 32, 64, 128]
    conv = head.mask_convs[0]
    assert conv.conv.bias is not None
    assert isinstance(conv.gn, torch.nn.GroupNorm)
    # The pixel branch follows the head's conv_cfg like its towers.
    custom = MODELS.build(dict(type='EmbedMaskHead', num_classes=3,
                               in_channels=16, feat_channels=16,
                               conv_cfg=dict(type='Conv2d'),
                               norm_cfg=dict(type='GN', num_groups=4)))
    assert custom.mask_convs[0].conv_cfg == dict(type='Conv2d')


def test_masks_lie_in_their_padded_boxes():
    head = build()
    res, = predict(head, confident_outs(head), [img_meta()])
    assert len(res) > 0 and res.masks.any()
    # Cells within box_padding cells of the box, and half a cell of
    # bilinear spread beyond them.
    pad = head.test_cfg.box_padding * 4 + 2
    for mask, (x1, y1, x2, y2) in zip(res.masks, res.bboxes.tolist()):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        if len(xs):
            assert xs.min() >= x1 - pad - 1 and xs.max() <= x2 + pad
            assert ys.min() >= y1 - pad - 1 and ys.max() <= y2 + pad
