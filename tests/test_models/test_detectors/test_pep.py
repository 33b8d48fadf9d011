import pytest
import torch

from mmdet.registry import MODELS
from pep_testing import demo_batch, tiny_detector_cfg


def build(**head_overrides):
    torch.manual_seed(0)
    model = MODELS.build(tiny_detector_cfg(**head_overrides))
    model.init_weights()
    return model


@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 125, 130)])
def test_loss_predict_tensor_modes(shape):
    model = build()
    data = demo_batch(model, [shape, shape], [3, 0], training=True)
    losses = model(**data, mode='loss')
    assert {'loss_perceive', 'loss_mask', 'loss_excavate',
            'loss_excavate_cls', 'loss_graph'} == set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()

    model.eval()
    data = demo_batch(model, [shape, shape], [3, 0], training=False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
        outs = model(data['inputs'], mode='tensor')
    assert len(preds) == 2
    for sample in preds:
        inst = sample.pred_instances
        assert inst.masks.shape[1:] == sample.ori_shape
        assert inst.bboxes.shape == (len(inst), 4)
    (desc, cls, mask_feats, exc_feats), = outs
    assert cls[0].shape[1] == 4 and mask_feats.shape[1] == 16
    assert exc_feats is not None


def test_baseline_has_no_excavate_or_graph_loss():
    model = build(excavator=None, purifier=None)
    data = demo_batch(model, [(3, 64, 64)], [2], training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_perceive', 'loss_mask'}
    assert model.mask_head.excavator is None
    assert model.mask_head.purifier is None


def test_detector_hands_its_cfgs_to_the_head():
    cfg = tiny_detector_cfg()
    cfg['test_cfg'] = dict(cfg['test_cfg'], score_thr=0.37)
    cfg['train_cfg'] = dict(note='train')
    cfg['init_cfg'] = dict(type='Normal', layer='Conv2d', std=0.02)
    model = MODELS.build(cfg)
    assert model.mask_head.test_cfg.score_thr == 0.37
    assert model.mask_head.train_cfg == dict(note='train')
    assert model.init_cfg == dict(type='Normal', layer='Conv2d', std=0.02)
    assert not model.with_bbox and model.with_mask
