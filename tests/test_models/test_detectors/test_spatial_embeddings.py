"""SpatialEmbeddings end to end: tiny detectors on ERFNet and on ResNet +
FPN in every mode, odd sizes, empty images, and an overfit on one crowded
image that the clustering must split into its objects."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from pep_testing import built, demo_batch, tiny_spatialemb_cfg


@pytest.mark.parametrize('backbone', ['resnet', 'erfnet'])
@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 61, 75)])
def test_loss_predict_tensor_modes(backbone, shape):
    model = built(tiny_spatialemb_cfg(backbone))
    data = demo_batch(model, [shape, shape], [3, 0], training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_inst', 'loss_var', 'loss_seed'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)

    model.eval()
    data = demo_batch(model, [shape, shape], [3, 0], training=False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
        (emb, seeds), = model(data['inputs'], mode='tensor')
    for sample in preds:
        inst = sample.pred_instances
        assert inst.masks.shape[1:] == sample.ori_shape
        assert inst.masks.dtype == torch.bool
        assert inst.bboxes.shape == (len(inst), 4)
        assert len(inst) <= 20
    # Offsets + 1 sigma and 3 seed maps at the padded input's size.
    assert emb.shape[1] == 3 and seeds.shape[1] == 3
    assert emb.shape[-2:] == data['inputs'].shape[-2:]


def test_detector_hands_test_cfg_to_the_head():
    cfg = tiny_spatialemb_cfg()
    cfg['test_cfg'] = dict(seed_thr=0.7)
    model = MODELS.build(cfg)
    assert model.mask_head.test_cfg.seed_thr == 0.7
    assert model.mask_head.test_cfg.min_pixels == 128  # the head's default
    assert model.bbox_head is None


def crowded_sample(size=64):
    """Three same-class squares side by side (touching) and a disc of
    another class, on a noisy background."""
    rng = np.random.RandomState(0)
    img = rng.randint(0, 40, (size, size, 3)).astype(np.uint8)
    masks = np.zeros((4, size, size), dtype=np.uint8)
    for i, x in enumerate((8, 22, 36)):
        masks[i, 10:24, x:x + 14] = 1
    yy, xx = np.mgrid[:size, :size]
    masks[3] = (yy - 45)**2 + (xx - 30)**2 <= 81
    colours = [(200, 60, 60), (190, 70, 60), (210, 50, 70), (60, 200, 60)]
    for m, c in zip(masks, colours):
        img[m.astype(bool)] = c
    img[10:24, 21:23] = 255  # a bright seam where the squares touch
    img[10:24, 35:37] = 255
    gt = InstanceData()
    gt.masks = BitmapMasks(masks, size, size)
    gt.labels = torch.tensor([0, 0, 0, 1])
    gt.bboxes = gt.masks.get_bboxes('hbox').tensor
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1., 1.),
            pad_shape=(size, size),
            batch_input_shape=(size, size)))
    sample.gt_instances = gt
    return torch.from_numpy(img).permute(2, 0, 1), sample, masks


def test_overfits_one_crowded_image_into_its_objects():
    """The whole method learns one image with three touching look-alike
    squares: after 250 Adam steps the clustering returns each object as
    its own instance (mask IoU > 0.8) and the right class, the loss has
    fallen to a small fraction."""
    torch.manual_seed(0)
    model = built(
        tiny_spatialemb_cfg(grid_unit=64., decoder_channels=(16, 8)))
    img, sample, masks = crowded_sample()
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=[sample]), True)
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(250):
        losses = model(**data, mode='loss')
        loss = sum(losses.values())
        first = loss.item() if first is None else first
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert loss.item() < 0.2 * first
    model.eval()
    model.mask_head.test_cfg.seed_thr = 0.5
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=[sample]), False)
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    gt = torch.from_numpy(masks).bool()
    inter = (pred.masks[:, None] & gt[None]).flatten(2).sum(2).float()
    union = (pred.masks[:, None] | gt[None]).flatten(2).sum(2).float()
    iou = inter / union
    best = iou.max(0)
    assert best.values.min() > 0.8, iou
    assert pred.labels[best.indices].tolist() == [0, 0, 0, 1]
