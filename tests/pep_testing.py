"""Test helpers: tiny PEP and EmbedMask models, hand-made ground truth and
the scripts of ``tools/`` as modules."""
import importlib.util
import os.path as osp

import numpy as np
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(path):
    """Import a script of ``tools/`` as a module, e.g.
    ``load_tool('analysis_tools/compare')``."""
    spec = importlib.util.spec_from_file_location(
        osp.basename(path), osp.join(ROOT, 'tools', path + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_gt(boxes, labels, shape=(64, 64), shape_kind='rect'):
    """GT instances whose masks fill their boxes (or the inscribed disc)."""
    h, w = shape
    masks = np.zeros((len(boxes), h, w), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if shape_kind == 'rect':
            masks[i, int(y1):int(y2), int(x1):int(x2)] = 1
        else:
            cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2
            masks[i] = ((xx + 0.5 - cx)**2 + (yy + 0.5 - cy)**2) <= r * r
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    gt.masks = BitmapMasks(masks, h, w)
    return gt


def check_masks_in_boxes(masks, boxes, tight=False):
    """Every non-empty mask lies inside its (x1, y1, x2, y2) box in the
    pixel-edge convention (x2 = last column + 1), exactly on it if
    ``tight``; an empty mask has the zero box. Returns the number of
    non-empty masks. ``masks``: (N, H, W) bool, numpy or torch."""
    nonempty = 0
    for mask, box in zip(np.asarray(masks), [list(b) for b in boxes]):
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            assert box == [0., 0., 0., 0.]
            continue
        nonempty += 1
        x1, y1, x2, y2 = box
        assert x1 <= xs.min() and y1 <= ys.min()
        assert x2 >= xs.max() + 1 and y2 >= ys.max() + 1
        if tight:
            assert box == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return nonempty


def img_meta(shape=(64, 64)):
    return dict(
        img_shape=shape,
        ori_shape=shape,
        pad_shape=shape,
        batch_input_shape=shape,
        scale_factor=(1.0, 1.0))


def tiny_head_cfg(**overrides):
    cfg = dict(
        type='PEPHead',
        num_classes=3,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)),
        num_grids=[12, 10, 8, 6, 4],
        mask_feature_head=dict(
            feat_channels=16,
            start_level=0,
            end_level=3,
            out_channels=16,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        excavator=dict(
            type='PEPExcavator',
            feat_channels=8,
            hidden_channels=8,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        purifier=dict(type='PEPPurifier', embed_channels=16),
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        test_cfg=dict(
            nms_pre=100,
            score_thr=0.05,
            mask_thr=0.5,
            max_per_img=20,
            excavate=dict(max_originals=10, key_thr=0.1, max_keys=4),
            purify=dict(group_thr=0.5),
            kernel='gaussian',
            sigma=2.0,
            filter_thr=0.05))
    cfg.update(overrides)
    return cfg


def tiny_excavator(**kwargs):
    """A PEPExcavator for C = 2 classes on 8-channel descriptors, no norm."""
    from mmdet_pep.models import PEPExcavator
    torch.manual_seed(0)
    return PEPExcavator(
        num_classes=2,
        in_channels=8,
        desc_channels=8,
        feat_channels=4,
        hidden_channels=4,
        norm_cfg=None,
        **kwargs)


def fpn_feats(batch=1, shape=(64, 64), channels=16, fill=None):
    """Five FPN levels (strides 4..64) for an input of ``shape``."""
    torch.manual_seed(0)
    feats = []
    for stride in (4, 8, 16, 32, 64):
        size = (max(1, -(-shape[0] // stride)), max(1, -(-shape[1] // stride)))
        f = torch.randn(batch, channels, *size)
        if fill is not None:
            f.fill_(fill)
        feats.append(f)
    return tuple(feats)


def _tiny_preprocessor_and_backbone():
    """The data preprocessor and narrow ResNet-18 (8 base channels, no
    weights to fetch) of every tiny detector here."""
    return dict(
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
            init_cfg=None))


def tiny_fpn(start_level: int = 0, num_outs: int = 5,
             extra_convs: bool = False) -> dict:
    """The 16-channel FPN over :func:`_tiny_preprocessor_and_backbone`'s
    narrow ResNet-18, from C2 (``start_level`` 0) or C3 (1);
    ``extra_convs``: FCOS's P6-P7 from P5's output, with a ReLU between."""
    neck = dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16,
                start_level=start_level, num_outs=num_outs)
    if extra_convs:
        neck.update(add_extra_convs='on_output', relu_before_extra_convs=True)
    return neck


def tiny_detector_cfg(**head_overrides):
    """A complete PEP with a narrow ResNet-18, built without downloads."""
    head = tiny_head_cfg(**head_overrides)
    test_cfg = head.pop('test_cfg')
    return dict(
        type='PEP',
        **_tiny_preprocessor_and_backbone(),
        neck=tiny_fpn(),
        mask_head=head,
        test_cfg=test_cfg)


# FCOS's ranges scaled to 128 px images, as the synthetic configs have them.
TINY_REGRESS_RANGES = ((-1, 16), (16, 32), (32, 64), (64, 128), (128, 1e8))


def _tiny_fcos_detector(detector: str, head: dict) -> dict:
    """A complete FCOS-style detector (narrow ResNet-18, 16-channel FPN
    P3-P7) with ``head`` as its bbox head."""
    return dict(
        type=detector,
        **_tiny_preprocessor_and_backbone(),
        neck=tiny_fpn(start_level=1, extra_convs=True),
        bbox_head=head,
        test_cfg=dict(nms_pre=100, score_thr=0.05, max_per_img=20))


FCOS_STRIDES = (8, 16, 32, 64, 128)


def tiny_fcos_head(head_type, **overrides):
    """A 16-channel head of the FCOS family (two-conv towers, GN of 4
    groups, 3 classes, the ranges for 128 px) for P3-P7; EmbedMask's and
    SipMask's own sizes are small too."""
    head = dict(
        type=head_type,
        num_classes=3,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        strides=FCOS_STRIDES,
        regress_ranges=TINY_REGRESS_RANGES,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    head.update(
        dict(num_mask_convs=2, position_divisor=16.)
        if head_type == 'EmbedMaskHead' else dict(num_bases=8,
                                                  basis_channels=16))
    head.update(overrides)
    return head


def fcos_feats(batch=1, shape=(64, 64), channels=16, fill=None):
    """Random P3-P7 features of an input of ``shape`` (seed 0), or all
    ``fill``."""
    torch.manual_seed(0)
    out = []
    for stride in FCOS_STRIDES:
        f = torch.randn(batch, channels, -(-shape[0] // stride),
                        -(-shape[1] // stride))
        if fill is not None:
            f.fill_(fill)
        out.append(f)
    return tuple(out)


def built(cfg):
    """``MODELS.build(cfg)`` with seed 0, initialised."""
    torch.manual_seed(0)
    module = MODELS.build(cfg)
    module.init_weights()
    return module


def tiny_embedmask_cfg(**head_overrides):
    """A complete EmbedMask with a narrow ResNet-18 and P3-P7."""
    return _tiny_fcos_detector(
        'EmbedMask', tiny_fcos_head('EmbedMaskHead', **head_overrides))


def tiny_sipmask_cfg(**head_overrides):
    """A complete SipMask with a narrow ResNet-18 and P3-P7, 8 bases."""
    return _tiny_fcos_detector(
        'SipMask', tiny_fcos_head('SipMaskHead', **head_overrides))


def tiny_spatialemb_cfg(backbone='resnet', **head_overrides):
    """A complete SpatialEmbeddings: ERFNet's encoder (``'erfnet'``, the
    official network, 2.2 M parameters) or a narrow ResNet-18 with a
    16-channel FPN, P3-P5 summed at P3 (``'resnet'``); small decoders, 3 classes,
    thresholds that let an untrained model predict."""
    head = dict(
        type='SpatialEmbHead',
        num_classes=3,
        in_channels=16,
        decoder_channels=(8, 4))
    head.update(head_overrides)
    test_cfg = dict(seed_thr=0.5, min_pixels=4, max_centres=50,
                    max_per_img=20)
    if backbone == 'erfnet':
        head['in_channels'] = 128
        return dict(
            type='SpatialEmbeddings',
            data_preprocessor=dict(
                type='DetDataPreprocessor',
                mean=[0., 0., 0.],
                std=[255., 255., 255.],
                bgr_to_rgb=True,
                pad_size_divisor=8),
            backbone=dict(type='ERFNetEncoder'),
            mask_head=head,
            test_cfg=test_cfg)
    return dict(
        type='SpatialEmbeddings',
        **_tiny_preprocessor_and_backbone(),
        neck=tiny_fpn(start_level=1, num_outs=3),
        mask_head=dict(head, in_index=(0, 1, 2)),
        test_cfg=test_cfg)


def tiny_sipmask_vis_cfg(**head_overrides):
    """SipMask-VIS on the tiny SipMask: a 16-channel track head with a
    32-d embedding and mmdet's MaskTrackRCNNTracker."""
    detector = tiny_sipmask_cfg(**head_overrides)
    preprocessor = dict(detector.pop('data_preprocessor'),
                        type='TrackDataPreprocessor')
    return dict(
        type='SipMaskVIS',
        detector=detector,
        data_preprocessor=preprocessor,
        track_head=dict(
            type='SipMaskTrackHead',
            in_channels=16,
            feat_channels=16,
            embed_channels=32,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        tracker=dict(type='MaskTrackRCNNTracker', num_frames_retain=20))


def demo_batch(model, shapes, num_items, training):
    """mmdet's demo inputs of ``shapes`` (C, H, W) with ``num_items`` GT
    instances each (3 classes, masks), through ``model``'s preprocessor."""
    packed = demo_mm_inputs(
        len(shapes), list(shapes), num_items=num_items, num_classes=3,
        with_mask=True)
    return model.data_preprocessor(packed, training)


def check_detector_modes(model, shape, tensor_outputs):
    """A tiny one-head detector (EmbedMask, SipMask) in every mode on two
    images of ``shape`` (C, H, W), one with 3 GT instances and one empty:
    the four losses are finite and reach every parameter, predictions have
    masks at ``ori_shape`` and real boxes, and tensor mode returns
    ``tensor_outputs = (number of outputs, channels, stride)`` of the last,
    image-level map."""
    data = demo_batch(model, [shape, shape], [3, 0], training=True)
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'loss_bbox', 'loss_centerness',
            'loss_mask'} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)

    model.eval()
    data = demo_batch(model, [shape, shape], [3, 0], training=False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
        outs = model(data['inputs'], mode='tensor')
    assert len(preds) == 2
    for sample in preds:
        inst = sample.pred_instances
        assert inst.masks.shape[1:] == sample.ori_shape
        assert inst.masks.dtype == torch.bool
        assert inst.bboxes.shape == (len(inst), 4)
    num_outs, channels, stride = tensor_outputs
    assert len(outs) == num_outs and outs[-1].shape[1] == channels
    assert outs[-1].shape[-2:] == tuple(s // stride for s in
                                        data['inputs'].shape[-2:])
    return losses, preds


# A crowded 64 px scene that tiny models learn in a few hundred steps.
SCENE_SIZE = 64


def _square(x1, y1, side=16):
    mask = np.zeros((SCENE_SIZE, SCENE_SIZE), bool)
    mask[y1:y1 + side, x1:x1 + side] = True
    return mask


def _disc(cx, cy, r):
    yy, xx = np.mgrid[:SCENE_SIZE, :SCENE_SIZE]
    return (xx + 0.5 - cx)**2 + (yy + 0.5 - cy)**2 <= r * r


def crowded_scene():
    """A 2 x 2 block of touching 16 px squares, a smaller square painted
    over the block's corner, and an isolated disc of another class.

    Same-class neighbours differ only in grey level (the cue a from-scratch
    backbone can use); objects are painted in order and each annotation is
    the visible mask. A mask that merges two neighbours has IoU
    |smaller| / |union| <= 0.5 with the smaller one, so a pair the model
    cannot split leaves that one without a mask of its own: touching equals
    give exactly 0.5, the occluder 144 / (144 + 240) = 0.375. The squares
    lie on the stride-4 grid of the mask features, so the mask targets are
    exact there; the disc does not, and its edge costs a little IoU.

    Returns:
        tuple: uint8 BGR image (SCENE_SIZE, SCENE_SIZE, 3), labels (G,), visible
        masks (G, SCENE_SIZE, SCENE_SIZE) bool.
    """
    objects = [
        (0, _square(4, 4), 230),
        (0, _square(20, 4), 150),
        (0, _square(4, 20), 100),
        (0, _square(20, 20), 190),
        (0, _square(32, 32, side=12), 250),  # hides a 4 x 4 corner of the 4th
        (1, _disc(52., 14., 8.), 170),
    ]
    image = np.full((SCENE_SIZE, SCENE_SIZE, 3), 40, np.uint8)
    owner = np.full((SCENE_SIZE, SCENE_SIZE), -1)
    for i, (_, mask, value) in enumerate(objects):
        image[mask] = value
        owner[mask] = i
    masks = np.stack([owner == i for i in range(len(objects))])
    labels = np.array([label for label, _, _ in objects])
    return image, labels, masks


def pack(model, image, labels, masks, training):
    """Hand-built batch of one image, through the model's preprocessor."""
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.from_numpy(labels)
    gt.masks = BitmapMasks(masks.astype(np.uint8), SCENE_SIZE, SCENE_SIZE)
    sample = DetDataSample(
        metainfo=dict(
            img_id=0,
            img_shape=(SCENE_SIZE, SCENE_SIZE),
            ori_shape=(SCENE_SIZE, SCENE_SIZE),
            scale_factor=(1.0, 1.0)))
    sample.gt_instances = gt
    inputs = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    return model.data_preprocessor(
        dict(inputs=[inputs], data_samples=[sample]), training)
