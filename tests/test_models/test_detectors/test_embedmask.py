"""EmbedMask end to end: tiny detector, every mode, odd sizes, empty
images. (Its overfit test is in tests/test_models/test_overfit.py.)"""
import pytest
import torch

from mmdet.registry import MODELS
from pep_testing import demo_batch, tiny_embedmask_cfg


def build(**head_overrides):
    torch.manual_seed(0)
    model = MODELS.build(tiny_embedmask_cfg(**head_overrides))
    model.init_weights()
    return model


@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 125, 130)])
def test_loss_predict_tensor_modes(shape):
    model = build()
    data = demo_batch(model, [shape, shape], [3, 0], training=True)
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
    # cls, bbox, centerness, embeds, margins per level; pixel embeddings.
    assert len(outs) == 6 and outs[5].shape[1] == 16
    assert outs[5].shape[-2:] == tuple(s // 4 for s in
                                       data['inputs'].shape[-2:])


def test_detector_keeps_its_train_and_init_cfg():
    cfg = tiny_embedmask_cfg()
    cfg['train_cfg'] = dict(note='kept')
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint='local.pth')
    model = MODELS.build(cfg)
    assert model.train_cfg == dict(note='kept')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='local.pth')


def test_detector_hands_its_test_cfg_to_the_head():
    cfg = tiny_embedmask_cfg()
    cfg['test_cfg'] = dict(cfg['test_cfg'], score_thr=0.37, mask_thr=0.4)
    model = MODELS.build(cfg)
    assert model.bbox_head.test_cfg.score_thr == 0.37
    assert model.bbox_head.test_cfg.mask_thr == 0.4
    assert model.bbox_head.test_cfg.box_padding == 2
