"""SipMaskPPHead: the mask-IoU branch, its loss against the official
formula, and mask scores at inference."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict

from mmdet_pep.models.dense_heads.sipmask_head import crop_split_logits
from pep_testing import built, fcos_feats, img_meta, make_gt, tiny_fcos_head

def build(**overrides):
    defaults = dict(
        num_bases=5,
        norm_cfg=None,
        test_cfg=dict(nms_pre=100, max_per_img=20, score_thr=0.))
    return built(tiny_fcos_head('SipMaskPPHead', **dict(defaults,
                                                        **overrides)))


feats = fcos_feats


def test_branch_layout_and_init():
    head = build()
    convs = head.mask_iou_convs
    assert [m.conv.out_channels for m in convs] == [16, 16, 16, 32, 64, 128]
    assert all(m.conv.stride == (2, 2) and m.conv.padding == (0, 0)
               and m.conv.bias is not None for m in convs)
    assert head.conv_mask_iou.out_channels == 3
    assert head.conv_mask_iou.weight.std().item() == pytest.approx(
        0.001, rel=0.3)
    with pytest.raises(ValueError, match='mask_iou_channels'):
        build(mask_iou_channels=())


def test_predict_mask_iou_pads_small_maps():
    head = build()
    torch.manual_seed(1)
    probs = torch.rand(4, 30, 40)
    labels = torch.tensor([0, 2, 1, 2])
    got = head.predict_mask_iou(probs, labels)
    # By hand: zero-pad to 127 x 127, the convs, 1x1, ReLU, max, label.
    x = F.pad(probs[:, None], (0, 87, 0, 97))
    x = F.relu(head.conv_mask_iou(head.mask_iou_convs(x)))
    assert x.shape[-2:] == (1, 1)
    assert torch.allclose(got, x[torch.arange(4), labels, 0, 0])
    assert (got >= 0).all()
    # A large map is not padded.
    big = torch.rand(2, 140, 130)
    assert head.predict_mask_iou(big, labels[:2]).shape == (2, )


def test_mask_iou_loss_equals_the_official_formula():
    head = build()
    # GT discs of 254 and 314 cells on the 32 x 32 basis map, and a third
    # GT of 64 cells, too small to count.
    gt = make_gt([[4, 4, 40, 40], [24, 20, 64, 60], [0, 44, 16, 60]],
                 [0, 2, 1], shape=(64, 64), shape_kind='disc')
    points = torch.tensor([[20., 20.], [44., 40.], [8., 52.], [50., 50.]])
    boxes = torch.tensor([[3., 5., 41., 39.], [22., 20., 62., 58.],
                          [0., 44., 17., 61.], [49., 49., 49.5, 49.5]])
    bbox_preds = torch.cat([points - boxes[:, :2], boxes[:, 2:] - points],
                           1)[None]
    torch.manual_seed(3)
    coeffs = torch.randn(1, 4, 4 * 5)
    bases = torch.rand(1, 5, 32, 32)
    pos = torch.tensor([0, 1, 2, 3])
    gt_inds = torch.tensor([0, 1, 2, 1])
    loss = head.loss_mask_iou_by_feat(bbox_preds, coeffs, bases, points,
                                      [pos], [gt_inds], [gt])
    # The official steps: boxes / 2 (the last one has no area and is
    # dropped), masks > 0.4, IoU with the GT on the basis map (+ 0.1 in the
    # denominator), weight if 0.1 < IoU <= 1 and the GT has >= 100 cells,
    # MSE summed x 10 / (count + 0.1).
    cells = boxes[:3] / 2
    logits, inside = crop_split_logits(bases[0], coeffs[0, :3].reshape(
        3, 4, 5), cells)
    probs = logits.sigmoid() * inside
    masks = probs > 0.4
    targets = F.interpolate(
        torch.as_tensor(gt.masks.masks, dtype=torch.float32)[None],
        size=(32, 32), mode='bilinear')[0][gt_inds[:3]] > 0.5
    inter = (masks & targets).flatten(1).sum(1).float()
    gt_area = targets.flatten(1).sum(1).float()
    ious = inter / (masks.flatten(1).sum(1) + gt_area - inter + 0.1)
    weights = ((ious > 0.1) & (ious <= 1) & (gt_area >= 100)).float()
    pred = head.predict_mask_iou(probs, gt.labels[gt_inds[:3]])
    expected = 10 * (weights * (pred - ious)**2).sum() / (weights.sum() + 0.1)
    assert 0 < weights.sum() < 3  # counted and left-out positives
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # Gradients reach only the IoU branch: the masks are detached.
    bases.requires_grad_()
    coeffs.requires_grad_()
    loss = head.loss_mask_iou_by_feat(bbox_preds, coeffs, bases, points,
                                      [pos], [gt_inds], [gt])
    loss.backward()
    assert bases.grad is None and coeffs.grad is None
    assert head.conv_mask_iou.weight.grad is not None


def test_loss_has_the_iou_term_and_reaches_every_parameter():
    head = build()
    head.train()
    with torch.no_grad():
        head.conv_reg.bias.fill_(2.)
        head.conv_coeff.bias.fill_(1.)
    gts = [make_gt([[4, 4, 40, 40], [20, 4, 60, 44]], [0, 0],
                   shape_kind='disc')]
    losses = head.loss_by_feat(*head(feats()), batch_gt_instances=gts,
                               batch_img_metas=[img_meta()])
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask',
        'loss_mask_iou'
    }
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())
    assert not hasattr(head, '_positives')


def test_predictions_carry_mask_scores():
    head = build()
    head.eval()
    with torch.no_grad():
        head.conv_cls.bias.fill_(2.)
        head.conv_reg.bias.fill_(1.)
        # A constant IoU of 0.5: the mask scores are half the box scores.
        head.conv_mask_iou.weight.zero_()
        head.conv_mask_iou.bias.fill_(0.5)
        res = head.predict_by_feat(*head(feats()),
                                   batch_img_metas=[img_meta()],
                                   rescale=True)[0]
    assert len(res) > 0
    assert torch.allclose(res.mask_scores, 0.5 * res.scores)
    # Nothing above the threshold: empty mask scores too.
    with torch.no_grad():
        empty = head.predict_by_feat(
            *head(feats()), batch_img_metas=[img_meta()], rescale=True,
            cfg=ConfigDict(score_thr=0.999))[0]
    assert len(empty) == 0 and empty.mask_scores.shape == (0, )
