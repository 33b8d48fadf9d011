"""SipMaskHead: the crop-split assembly and the mask loss against brute
force, FCOS targets against mmdet's, alignment, losses, gradients and
predictions."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet_pep.models.dense_heads.sipmask_head import (box_quadrants,
                                                       crop_split_logits)
from pep_testing import (FCOS_STRIDES, TINY_REGRESS_RANGES, built,
                         check_masks_in_boxes, fcos_feats, img_meta, make_gt,
                         tiny_fcos_head)

def head_cfg(**overrides):
    return tiny_fcos_head(
        'SipMaskHead', **dict(dict(test_cfg=dict(nms_pre=100, max_per_img=20)),
                           **overrides))


def build(**overrides):
    return built(head_cfg(**overrides))


feats = fcos_feats
STRIDES = list(FCOS_STRIDES)


# The crop-split assembly ----------------------------------------------------


def brute_quadrants(box, h, w):
    """The official CUDA CropSplit kernel, cell by cell, in Python floats:
    inside iff x1 <= j < x2 and y1 <= i < y2; quadrant index
    int((j - x1) / ((x2 - x1 + 0.1) / 2)) (and the same for rows)."""
    x1, y1, x2, y2 = box
    quadrant = np.full((h, w), -1)
    for i in range(h):
        for j in range(w):
            if j >= x1 and i >= y1 and j < x2 and i < y2:
                qx = int((j - x1) / ((x2 - x1 + 0.1) / 2))
                qy = int((i - y1) / ((y2 - y1 + 0.1) / 2))
                quadrant[i, j] = qy * 2 + qx
    return quadrant


BOXES = [
    [1.0, 2.0, 7.0, 6.0],  # integer corners
    [0.3, 0.7, 5.6, 8.2],  # fractional, even/odd split
    [-2.0, -3.0, 4.5, 3.0],  # starts outside the map
    [6.0, 5.0, 12.0, 20.0],  # ends outside the map
    [2.0, 2.0, 3.0, 3.0],  # one cell
    [4.0, 4.0, 4.5, 4.5],  # covers no cell centre index
]


def test_box_quadrants_equal_the_cuda_kernel():
    h, w = 9, 10
    quadrant, inside = box_quadrants(torch.tensor(BOXES), (h, w))
    assert quadrant.shape == inside.shape == (len(BOXES), h, w)
    for n, box in enumerate(BOXES):
        expected = brute_quadrants(box, h, w)
        assert (inside[n].numpy() == (expected >= 0)).all(), box
        got = torch.where(inside[n], quadrant[n], -1).numpy()
        assert (got == expected).all(), box
    # The one-cell box is its top-left quadrant; the last one has no cell
    # (4 >= 4 but 4 < 4.5 holds: it has cell (4, 4)).
    assert inside[4].sum() == 1 and quadrant[4, 2, 2] == 0
    assert inside[5].sum() == 1


def test_box_quadrants_split_a_box_in_four():
    # An 8 x 6 box splits at 8.1 / 2 = 4.05 and 6.1 / 2 = 3.05 cells from
    # its corner: columns 0-4 left, 5-7 right; rows 0-3 top, 4-5 bottom
    # (the official kernel's +0.1 moves the middle cell to the first half).
    quadrant, inside = box_quadrants(torch.tensor([[0., 0., 8., 6.]]), (6, 8))
    assert inside.all()
    expected = torch.tensor([[0] * 5 + [1] * 3] * 4 + [[2] * 5 + [3] * 3] * 2)
    assert torch.equal(quadrant[0], expected)


def test_crop_split_logits_equal_brute_force_with_gradients():
    torch.manual_seed(0)
    h, w, k = 9, 10, 5
    bases = torch.rand(k, h, w, requires_grad=True)
    coeffs = torch.randn(len(BOXES), 4, k, requires_grad=True)
    logits, inside = crop_split_logits(bases, coeffs, torch.tensor(BOXES))
    # Brute force: the sum over quadrants of each quadrant's sigmoid kept in
    # its own quadrant, as the official code assembles probabilities.
    probs = []
    for n, box in enumerate(BOXES):
        quadrant = torch.as_tensor(brute_quadrants(box, h, w))
        prob = torch.zeros(h, w)
        for q in range(4):
            prob = prob + torch.sigmoid(
                torch.einsum('k,khw->hw', coeffs[n, q], bases)) * (
                    quadrant == q)
        probs.append(prob)
    probs = torch.stack(probs)
    got = torch.sigmoid(logits) * inside
    assert torch.allclose(got, probs, atol=1e-6)
    # Gradients of any function of the kept values agree.
    weights = torch.rand(len(BOXES), h, w)
    grads = torch.autograd.grad((got * weights).sum(), (bases, coeffs))
    expected = torch.autograd.grad((probs * weights).sum(), (bases, coeffs))
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, atol=1e-6)
    empty, inside = crop_split_logits(bases, coeffs[:0], torch.zeros(0, 4))
    assert empty.shape == inside.shape == (0, h, w)


# Construction and forward ---------------------------------------------------


def test_towers_alignment_and_init():
    head = build(stacked_convs=3)
    # The classification tower has one conv less: the alignment is last.
    assert len(head.cls_convs) == 2 and len(head.reg_convs) == 3
    assert head.feat_align.conv_offset.weight.abs().max() == 0
    assert head.feat_align.conv_offset.bias is None
    assert head.conv_coeff.weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert head.conv_cls.bias[0].item() == pytest.approx(-math.log(99), abs=1e-4)
    assert head.conv_coeff.out_channels == 4 * 8
    assert head.basis_fuse.in_channels == 3 * 16
    # One conv: the alignment reads the level feature itself.
    head = build(stacked_convs=1, feat_channels=8)
    assert len(head.cls_convs) == 0
    assert head.feat_align.conv_adaption.in_channels == 16
    assert head.conv_cls.in_channels == 16


def test_zero_offsets_make_the_alignment_a_plain_conv():
    head = build()
    align = head.feat_align
    x = torch.randn(2, 16, 7, 9)
    box = torch.rand(2, 4, 7, 9) * 5
    expected = F.relu(
        align.norm(
            F.conv2d(x, align.conv_adaption.weight, padding=1)))
    assert torch.allclose(align(x, box), expected, atol=1e-5)


def test_alignment_kernels_agree():
    head = build()
    align = head.feat_align
    torch.manual_seed(1)
    with torch.no_grad():
        align.conv_offset.weight.normal_(std=0.5)
    x = torch.randn(2, 16, 7, 9)
    box = torch.rand(2, 4, 7, 9) * 5
    outs = {}
    for impl in ('mmcv', 'torch', 'auto'):
        align.impl = impl
        outs[impl] = align(x, box)
    assert torch.allclose(outs['mmcv'], outs['torch'], atol=1e-5)
    assert torch.equal(outs['auto'], outs['torch'])  # on the CPU
    assert build(deform_impl='mmcv').feat_align.impl == 'mmcv'
    with pytest.raises(ValueError, match='impl'):
        build(deform_impl='cuda')


def test_alignment_does_not_train_the_box_branch():
    head = build()
    head.train()
    cls_score, bbox_pred, _, coeff, _ = head.forward_single(
        feats()[0], head.scales[0], 8)
    (cls_score.sum() + coeff.sum()).backward()
    assert head.conv_reg.weight.grad is None or \
        head.conv_reg.weight.grad.abs().max() == 0
    assert head.feat_align.conv_offset.weight.grad is not None


@pytest.mark.parametrize('shape', [(64, 64), (96, 160), (72, 88)])
def test_forward_shapes(shape):
    head = build()
    head.eval()
    x = feats(2, shape)
    with torch.no_grad():
        cls_scores, bbox_preds, ctrs, coeffs, bases = head(x)
    for lvl, f in enumerate(x):
        assert cls_scores[lvl].shape == (2, 3, *f.shape[-2:])
        assert bbox_preds[lvl].shape == (2, 4, *f.shape[-2:])
        assert ctrs[lvl].shape == (2, 1, *f.shape[-2:])
        assert coeffs[lvl].shape == (2, 32, *f.shape[-2:])
    # Stride 2: four times P3, however P4/P5 round.
    assert bases.shape == (2, 8, 4 * x[0].shape[-2], 4 * x[0].shape[-1])
    assert (bases >= 0).all()  # non-negative bases (ReLU)
    # Inference distances are in pixels, training ones in strides.
    head.train()
    train_preds = head(x)[1]
    assert torch.allclose(train_preds[1] * 16, bbox_preds[1], atol=1e-5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_bases=0), 'num_bases'),
    (dict(basis_channels=0), 'basis_channels'),
    (dict(strides=[8, 16], regress_ranges=((-1, 16), (16, 1e8))), 'three'),
    (dict(basis_stride=3), 'basis_stride'),
    (dict(test_cfg=dict(mask_thr=1.0)), 'mask_thr'),
    (dict(test_cfg=dict(nms=dict(type='soft_nms'))), 'fast_nms'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(head_cfg(**kwargs))


# Targets and losses ----------------------------------------------------------


def test_targets_are_fcos_box_centre_targets():
    """Labels and box targets equal mmdet's FCOSHead's on the same GT (box
    centre sampling, not CondInst's mask centre), and the GT indices point
    at the GT each box target was measured to."""
    head = build()
    fcos = FCOSHead(
        num_classes=3,
        in_channels=16,
        strides=STRIDES,
        regress_ranges=TINY_REGRESS_RANGES,
        center_sampling=True,
        norm_on_bbox=True)
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    points = head.prior_generator.grid_priors(sizes, device='cpu')
    # Crowded same-class boxes, nested boxes, a box without a mask centre.
    gt = make_gt([[2, 2, 30, 20], [20, 4, 44, 28], [24, 8, 40, 24],
                  [40, 40, 64, 64], [0, 36, 10, 60]], [0, 0, 0, 1, 2])
    ranges = torch.cat([
        p.new_tensor(r)[None].expand(len(p), 2)
        for p, r in zip(points, TINY_REGRESS_RANGES)
    ])
    num = [len(p) for p in points]
    labels, targets, pos_inds, gt_inds = head._get_targets_single(
        gt, torch.cat(points), ranges, num)
    ref_labels, ref_targets = fcos._get_targets_single(
        gt, torch.cat(points), ranges, num)
    assert torch.equal(labels, ref_labels)
    assert torch.allclose(targets, ref_targets)
    assert torch.equal(pos_inds, (labels < 3).nonzero().reshape(-1))
    pts = torch.cat(points)[pos_inds]
    boxes = torch.cat([pts - targets[pos_inds, :2],
                       pts + targets[pos_inds, 2:]], 1)
    assert torch.allclose(boxes, gt.bboxes[gt_inds])
    assert len(pos_inds) > 5


def official_mask_loss(cls_scores, boxes, coeffs, bases, gt, gt_inds, pos,
                       num_imgs):
    """The official loss of one image, step by step: probabilities crop-
    split, GT resized x0.5 bilinear and > 0.5 then cropped to the box, BCE
    summed / w / h / N, weights cls x IoU renormalised."""
    cells = boxes / 2
    area = (cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1])
    keep = area > 1
    cells, boxes, gt_inds, pos = cells[keep], boxes[keep], gt_inds[keep], \
        pos[keep]
    labels = gt.labels[gt_inds]
    w = cls_scores[pos, labels].sigmoid() * bbox_overlaps(
        gt.bboxes[gt_inds] / 2, cells, is_aligned=True)
    w = w / (w.sum() + 1e-4) * len(w)
    masks = torch.as_tensor(gt.masks.masks, dtype=torch.float32)
    gt_small = (F.interpolate(masks[None], scale_factor=0.5,
                              mode='bilinear')[0] > 0.5).float()
    h, wd = bases.shape[-2:]
    total = 0.
    for n in range(len(cells)):
        quadrant = torch.as_tensor(brute_quadrants(cells[n].tolist(), h, wd))
        prob = torch.zeros(h, wd)
        for q in range(4):
            prob = prob + torch.sigmoid(
                torch.einsum('k,khw->hw', coeffs[pos[n], q], bases)) * (
                    quadrant == q)
        target = gt_small[gt_inds[n]] * (quadrant >= 0)
        bce = F.binary_cross_entropy(prob, target, reduction='sum')
        bw = cells[n, 2] - cells[n, 0]
        bh = cells[n, 3] - cells[n, 1]
        total = total + bce / bw / bh / len(cells) * w[n]
    return total / num_imgs


def test_mask_loss_equals_the_official_formula():
    head = build(num_bases=5)
    torch.manual_seed(1)
    num_points, h, w = 30, 16, 16
    gt = make_gt([[2, 2, 20, 14], [10, 6, 30, 30], [0, 16, 12, 32]],
                 [0, 0, 2], shape=(32, 32), shape_kind='disc')
    pos = torch.tensor([3, 7, 8, 12, 20, 25])
    gt_inds = torch.tensor([0, 0, 1, 1, 2, 1])
    boxes = torch.tensor([[1., 1., 18., 15.], [3., 2., 21., 12.],
                          [9., 5., 31., 29.], [12., 8., 28., 26.],
                          [1., 15., 13., 30.], [10., 10., 10.5, 11.]])
    points = torch.rand(num_points, 2) * 32
    bbox_preds = torch.zeros(1, num_points, 4)
    bbox_preds[0, pos] = torch.cat(
        [points[pos] - boxes[:, :2], boxes[:, 2:] - points[pos]], 1)
    cls_scores = torch.randn(1, num_points, 3)
    coeffs = torch.randn(1, num_points, 4 * 5)
    bases = torch.rand(1, 5, h, w)
    loss = head.loss_mask_by_feat(cls_scores, bbox_preds, coeffs, bases,
                                  points, [pos], [gt_inds], [gt])
    expected = official_mask_loss(cls_scores[0], boxes,
                                  coeffs[0].reshape(-1, 4, 5), bases[0], gt,
                                  gt_inds, pos, 1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # The last box covers half a cell: dropped, as officially.
    # Two images, the second without positives: the mean over images.
    loss2 = head.loss_mask_by_feat(
        torch.cat([cls_scores] * 2), torch.cat([bbox_preds] * 2),
        torch.cat([coeffs] * 2), torch.cat([bases] * 2), points,
        [pos, pos[:0]], [gt_inds, gt_inds[:0]], [gt, gt[:0]])
    assert loss2.item() == pytest.approx(expected.item() / 2, rel=1e-5)


def test_mask_loss_without_usable_positives_is_a_connected_zero():
    head = build()
    bases = torch.rand(1, 8, 16, 16, requires_grad=True)
    gt = make_gt([[2, 2, 20, 14]], [0], shape=(32, 32))
    points = torch.rand(4, 2) * 32
    # A positive whose predicted box has no area.
    loss = head.loss_mask_by_feat(
        torch.randn(1, 4, 3), torch.zeros(1, 4, 4), torch.randn(1, 4, 32),
        bases, points, [torch.tensor([1])], [torch.tensor([0])], [gt])
    assert loss.item() == 0
    loss.backward()
    assert all(p.grad is not None for p in head.parameters())


def test_mask_loss_needs_gt_masks():
    head = build()
    gt = make_gt([[2, 2, 20, 14]], [0], shape=(32, 32))
    del gt.masks
    with pytest.raises(ValueError, match='with_mask=True'):
        head.loss_mask_by_feat(
            torch.randn(1, 4, 3), torch.zeros(1, 4, 4),
            torch.randn(1, 4, 32), torch.rand(1, 8, 16, 16),
            torch.rand(4, 2) * 32, [torch.tensor([1])],
            [torch.tensor([0])], [gt])


def head_losses(head, gts, shape=(64, 64)):
    outs = head(feats(len(gts), shape))
    return head.loss_by_feat(
        *outs,
        batch_gt_instances=gts,
        batch_img_metas=[img_meta(shape) for _ in gts])


@pytest.mark.parametrize('boxes, labels', [
    ([], []),
    ([[8, 8, 40, 40]], [1]),
    ([[4, 4, 24, 24], [20, 4, 40, 24], [36, 4, 56, 24], [12, 20, 32, 40]],
     [0, 0, 0, 0]),  # crowded, touching same-class objects
])
def test_losses_are_finite_and_reach_every_parameter(boxes, labels):
    head = build()
    head.train()
    # Train the box branch first: predicted boxes need an area for the
    # mask loss to see positives.
    gts = [make_gt(boxes, labels, shape_kind='disc')]
    with torch.no_grad():
        head.conv_reg.bias.fill_(2.)
    losses = head_losses(head, gts)
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask'
    }
    total = sum(losses.values())
    assert torch.isfinite(total)
    if boxes:
        assert losses['loss_mask'] > 0
    else:
        assert losses['loss_mask'] == 0
    total.backward()
    assert all(p.grad is not None for p in head.parameters())


# Predictions -----------------------------------------------------------------


def predict(head, x, shape=(64, 64), rescale=True, **cfg):
    head.eval()
    meta = img_meta(shape)
    with torch.no_grad():
        return head.predict_by_feat(
            *head(x), batch_img_metas=[meta], rescale=rescale,
            cfg=ConfigDict(cfg) if cfg else None)[0]


def check_types(res, shape):
    assert res.masks.dtype == torch.bool
    assert res.masks.shape[1:] == shape
    assert res.scores.shape == res.labels.shape == (len(res), )
    assert res.bboxes.shape == (len(res), 4)
    assert 'coeffs' not in res


@pytest.mark.parametrize('nms', ['nms', 'fast_nms'])
def test_predict_nothing_above_threshold(nms):
    head = build()
    res = predict(head, feats(), score_thr=0.99,
                  nms=dict(type=nms, iou_threshold=0.5))
    assert len(res) == 0
    check_types(res, (64, 64))


@pytest.mark.parametrize('nms', ['nms', 'fast_nms'])
def test_predict_masks_lie_in_their_boxes(nms):
    head = build()
    with torch.no_grad():
        head.conv_cls.bias.fill_(2.)  # every location scores ~0.88
        head.conv_reg.bias.fill_(1.)
        head.conv_coeff.bias.fill_(3.)  # masks fill their boxes
    nms_cfg = dict(type=nms, iou_threshold=0.5)
    if nms == 'fast_nms':
        nms_cfg['top_k'] = 200
    res = predict(head, feats(), score_thr=0.05, nms=nms_cfg, max_per_img=15)
    check_types(res, (64, 64))
    assert 0 < len(res) <= 15
    assert (res.scores[:-1] >= res.scores[1:]).all()
    # Masks are zero outside their (pixel-snapped) boxes: every kept
    # pixel lies in the box grown by the basis cell (2 px).
    grown = res.bboxes + torch.tensor([-2., -2., 2., 2.])
    assert check_masks_in_boxes(res.masks, grown) > 0


def test_predict_rescales_masks_and_boxes():
    head = build()
    with torch.no_grad():
        head.conv_cls.bias.fill_(2.)
        head.conv_reg.bias.fill_(1.)
        head.conv_coeff.bias.fill_(3.)
    meta = dict(img_meta((64, 64)), ori_shape=(32, 40),
                scale_factor=(64 / 40, 64 / 32))
    head.eval()
    with torch.no_grad():
        outs = head(feats())
        small = head.predict_by_feat(*outs, batch_img_metas=[meta],
                                     rescale=True)[0]
        big = head.predict_by_feat(*outs, batch_img_metas=[meta],
                                   rescale=False)[0]
    assert small.masks.shape[1:] == (32, 40)
    assert big.masks.shape[1:] == (64, 64)
    assert torch.allclose(
        small.bboxes, big.bboxes / torch.tensor([1.6, 2., 1.6, 2.]))


def test_non_finite_features_give_no_detections():
    head = build()
    for fill in (float('nan'), float('inf')):
        res = predict(head, feats(fill=fill))
        assert len(res) == 0
        check_types(res, (64, 64))


def test_predict_needs_nms():
    head = build()
    head.eval()
    with torch.no_grad(), pytest.raises(ValueError, match='NMS'):
        head.predict_by_feat(*head(feats()),
                             batch_img_metas=[img_meta()],
                             with_nms=False)


def test_test_cfg_defaults_and_overrides():
    head = build(test_cfg=None)
    assert head.test_cfg.mask_thr == 0.4
    assert head.test_cfg.nms == dict(type='nms', iou_threshold=0.5)
    assert head.test_cfg.nms_pre == 1000 and head.test_cfg.max_per_img == 100
    head = build(test_cfg=dict(mask_thr=0.5))
    assert head.test_cfg.mask_thr == 0.5 and head.test_cfg.score_thr == 0.05
    assert isinstance(head.test_cfg, ConfigDict)
