"""EmbedMask end to end: tiny detector, every mode, odd sizes, empty
images, configs handed on. (Its overfit test is in
tests/test_models/test_overfit.py.)"""
import pytest

from pep_testing import built, check_detector_modes, tiny_embedmask_cfg


@pytest.mark.parametrize('shape', [(3, 64, 64), (3, 125, 130)])
def test_loss_predict_tensor_modes(shape):
    # Per level cls, bbox, centerness, embeddings, margins; then the pixel
    # embeddings (16 dims at stride 4).
    check_detector_modes(built(tiny_embedmask_cfg()), shape, (6, 16, 4))


def test_detector_keeps_its_cfgs_and_hands_test_cfg_to_the_head():
    from mmdet.registry import MODELS
    cfg = tiny_embedmask_cfg()
    cfg['train_cfg'] = dict(note='kept')
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint='local.pth')
    cfg['test_cfg'] = dict(cfg['test_cfg'], score_thr=0.37, mask_thr=0.45)
    model = MODELS.build(cfg)
    assert model.train_cfg == dict(note='kept')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='local.pth')
    head = model.bbox_head
    assert head.test_cfg.score_thr == 0.37 and head.test_cfg.mask_thr == 0.45
    # Keys the detector's test_cfg does not set keep the head's defaults.
    assert head.test_cfg.box_padding == 2
    assert head.test_cfg.nms == head.TEST_CFG_DEFAULTS['nms']
