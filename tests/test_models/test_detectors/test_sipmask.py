"""SipMask and SipMask++ end to end: tiny detectors, every mode, odd sizes,
empty images, configs handed on. (The overfit test is in
tests/test_models/test_overfit.py.)"""
import pytest
import torch

from mmdet.registry import MODELS
from pep_testing import built, check_detector_modes, tiny_sipmask_cfg


@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 125, 130)])
def test_loss_predict_tensor_modes(shape):
    # Per level cls, bbox, centerness, coefficients; then the 8 bases at
    # stride 2.
    check_detector_modes(built(tiny_sipmask_cfg()), shape, (5, 8, 2))


def test_sipmask_pp_detector():
    """SipMask++: the rescoring head on a ResNet with DCN on every third
    block; mask scores in the predictions, the IoU loss in the losses."""
    cfg = tiny_sipmask_cfg(type='SipMaskPPHead')
    cfg['backbone'] = dict(
        cfg['backbone'],
        type='ResNetDCNInterval',
        depth=50,
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True))
    cfg['neck']['in_channels'] = [32, 64, 128, 256]
    model = built(cfg)
    with torch.no_grad():  # boxes with an area, so the mask losses run
        model.bbox_head.conv_reg.bias.fill_(2.)
    model.bbox_head.test_cfg.score_thr = 0.
    losses, preds = check_detector_modes(model, (3, 64, 64), (5, 8, 2))
    assert losses['loss_mask_iou'] >= 0
    for sample in preds:
        inst = sample.pred_instances
        assert inst.mask_scores.shape == inst.scores.shape


def test_detector_keeps_its_cfgs_and_hands_test_cfg_to_the_head():
    cfg = tiny_sipmask_cfg()
    cfg['train_cfg'] = dict(note='kept')
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint='local.pth')
    cfg['test_cfg'] = dict(
        cfg['test_cfg'],
        nms=dict(type='fast_nms', iou_threshold=0.4, top_k=50))
    model = MODELS.build(cfg)
    assert model.train_cfg == dict(note='kept')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='local.pth')
    head = model.bbox_head
    assert head.test_cfg.nms.type == 'fast_nms'
    assert head.test_cfg.mask_thr == 0.4  # the head's default
