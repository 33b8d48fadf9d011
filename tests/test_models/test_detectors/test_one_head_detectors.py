"""EmbedMask and SipMask end to end (detectors whose bbox head also returns
masks): tiny detector, every mode, odd sizes, empty images. (Their overfit
tests are in tests/test_models/test_overfit.py.)"""
import pytest
import torch

from mmdet.registry import MODELS
from pep_testing import demo_batch, tiny_embedmask_cfg, tiny_sipmask_cfg

TINY_CFGS = dict(EmbedMask=tiny_embedmask_cfg, SipMask=tiny_sipmask_cfg)
# tensor mode: the per-level outputs, then one map of the whole image with
# its channels and stride.
TENSOR_OUTPUTS = dict(EmbedMask=(6, 16, 4), SipMask=(5, 8, 2))


def build(method, **head_overrides):
    torch.manual_seed(0)
    model = MODELS.build(TINY_CFGS[method](**head_overrides))
    model.init_weights()
    return model


@pytest.mark.parametrize('method', sorted(TINY_CFGS))
@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 125, 130)])
def test_loss_predict_tensor_modes(method, shape):
    model = build(method)
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
    num_outs, channels, stride = TENSOR_OUTPUTS[method]
    assert len(outs) == num_outs and outs[-1].shape[1] == channels
    assert outs[-1].shape[-2:] == tuple(s // stride for s in
                                        data['inputs'].shape[-2:])


@pytest.mark.parametrize('method', sorted(TINY_CFGS))
def test_detector_keeps_its_train_and_init_cfg(method):
    cfg = TINY_CFGS[method]()
    cfg['train_cfg'] = dict(note='kept')
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint='local.pth')
    model = MODELS.build(cfg)
    assert model.train_cfg == dict(note='kept')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='local.pth')


@pytest.mark.parametrize('method', sorted(TINY_CFGS))
def test_detector_hands_its_test_cfg_to_the_head(method):
    cfg = TINY_CFGS[method]()
    cfg['test_cfg'] = dict(cfg['test_cfg'], score_thr=0.37, mask_thr=0.45)
    model = MODELS.build(cfg)
    assert model.bbox_head.test_cfg.score_thr == 0.37
    assert model.bbox_head.test_cfg.mask_thr == 0.45
    # Keys the detector's test_cfg does not set keep the head's defaults.
    assert model.bbox_head.test_cfg.nms == \
        model.bbox_head.TEST_CFG_DEFAULTS['nms']
