"""EmbedMask end to end: tiny detector, every mode, odd sizes, empty images,
and a short overfit that shows the whole method learns masks."""
import pytest
import torch

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.structures import DetDataSample
from pep_testing import make_gt


def tiny_cfg(**head_overrides):
    head = dict(
        type='EmbedMaskHead',
        num_classes=3,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        num_mask_convs=2,
        regress_ranges=((-1, 16), (16, 32), (32, 64), (64, 128), (128,
                                                                  1e8)),
        position_divisor=16.,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    head.update(head_overrides)
    return dict(
        type='EmbedMask',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_mask=True,
            pad_size_divisor=32),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            norm_cfg=dict(type='BN', requires_grad=True),
            init_cfg=None),
        neck=dict(
            type='FPN',
            in_channels=[8, 16, 32, 64],
            out_channels=16,
            start_level=1,
            add_extra_convs='on_output',
            num_outs=5,
            relu_before_extra_convs=True),
        bbox_head=head,
        test_cfg=dict(nms_pre=100, score_thr=0.05, max_per_img=20))


def build(**head_overrides):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**head_overrides))
    model.init_weights()
    return model


def batch(model, shapes, num_items, training):
    packed = demo_mm_inputs(
        len(shapes), list(shapes), num_items=num_items, num_classes=3,
        with_mask=True)
    return model.data_preprocessor(packed, training)


@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 125, 130)])
def test_loss_predict_tensor_modes(shape):
    model = build()
    data = batch(model, [shape, shape], [3, 0], training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask'
    }
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)

    model.eval()
    data = batch(model, [shape, shape], [3, 0], training=False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
        outs = model(data['inputs'], mode='tensor')
    assert len(preds) == 2
    for sample in preds:
        inst = sample.pred_instances
        assert inst.masks.shape[1:] == sample.ori_shape
        assert inst.masks.dtype == torch.bool
        assert inst.bboxes.shape == (len(inst), 4)
    # cls, bbox, centerness, embeds, margins per level; pixel embeddings.
    assert len(outs) == 6 and outs[5].shape[1] == 16
    assert outs[5].shape[-2:] == tuple(s // 4 for s in
                                       data['inputs'].shape[-2:])


def test_detector_hands_its_test_cfg_to_the_head():
    cfg = tiny_cfg()
    cfg['test_cfg'] = dict(cfg['test_cfg'], score_thr=0.37, mask_thr=0.4)
    model = MODELS.build(cfg)
    assert model.bbox_head.test_cfg.score_thr == 0.37
    assert model.bbox_head.test_cfg.mask_thr == 0.4
    assert model.bbox_head.test_cfg.box_padding == 2


def test_overfits_one_crowded_image():
    """Three touching same-class discs and a square: after 150 Adam steps
    the losses fall and every GT has a detection of its class whose mask
    matches it at IoU > 0.8."""
    model = build()
    gt = make_gt([[8, 8, 32, 32], [30, 8, 54, 32], [18, 28, 42, 52],
                  [40, 36, 60, 60]], [1, 1, 1, 2],
                 shape_kind='disc')
    gt.masks.masks[3] = 0
    gt.masks.masks[3, 36:60, 40:60] = 1
    torch.manual_seed(0)
    img = torch.rand(3, 64, 64) * 60
    for m, colour in zip(gt.masks.masks, ([200, 40, 40], [200, 40, 40],
                                           [200, 40, 40], [40, 200, 40])):
        img[:, torch.from_numpy(m).bool()] = torch.tensor(
            colour, dtype=torch.float32)[:, None]
    sample = DetDataSample(
        metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                      scale_factor=(1., 1.)))
    sample.gt_instances = gt
    data = model.data_preprocessor(
        dict(inputs=[img.to(torch.uint8)], data_samples=[sample]), True)
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    model.train()
    for _ in range(150):
        losses = model(**data, mode='loss')
        total = sum(losses.values())
        first = first if first is not None else {
            k: float(v) for k, v in losses.items()}
        optim.zero_grad()
        total.backward()
        optim.step()
    assert float(losses['loss_mask']) < 0.3 * first['loss_mask']
    assert float(losses['loss_cls']) < 0.3 * first['loss_cls']
    model.eval()
    with torch.no_grad():
        pred = model(**model.data_preprocessor(
            dict(inputs=[img.to(torch.uint8)], data_samples=[sample]),
            False), mode='predict')[0].pred_instances
    gt_masks = torch.from_numpy(gt.masks.masks).bool()
    for g in range(4):
        same = pred.labels == gt.labels[g]
        inter = (pred.masks[same] & gt_masks[g]).flatten(1).sum(1)
        union = (pred.masks[same] | gt_masks[g]).flatten(1).sum(1)
        assert same.any() and (inter / union).max() > 0.8, g
