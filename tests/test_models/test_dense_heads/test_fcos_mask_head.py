"""FCOSMaskHead, the base of EmbedMask's and SipMask's heads: test config
completion, mask resizing, and what a subclass must provide."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict

from mmdet_pep.models.dense_heads import FCOSMaskHead
from pep_testing import FCOS_STRIDES, TINY_REGRESS_RANGES, img_meta


def head(**test_cfg):
    return FCOSMaskHead(num_classes=3, in_channels=8, strides=FCOS_STRIDES,
                        regress_ranges=TINY_REGRESS_RANGES,
                        test_cfg=test_cfg or None)


def test_test_cfg_defaults_and_checks():
    cfg = head().test_cfg
    assert isinstance(cfg, ConfigDict)
    assert cfg == ConfigDict(FCOSMaskHead.TEST_CFG_DEFAULTS)
    assert head(score_thr=0.2, mask_thr=0.3).test_cfg.nms_pre == 1000
    for bad in (0., 1., 1.5):
        with pytest.raises(ValueError, match='mask_thr'):
            head(mask_thr=bad)


def test_to_output_size_crops_the_padding_then_resizes():
    maps = torch.rand(2, 8, 10)  # stride 4 over a 32 x 40 padded input
    meta = dict(img_meta((30, 37)), ori_shape=(60, 74))
    full = F.interpolate(maps[None], size=(32, 40), mode='bilinear')[0]
    got = FCOSMaskHead.to_output_size(maps, 4, meta, rescale=False)
    assert torch.equal(got, full[:, :30, :37])
    got = FCOSMaskHead.to_output_size(maps, 4, meta, rescale=True)
    assert torch.allclose(
        got,
        F.interpolate(full[None, :, :30, :37], size=(60, 74),
                      mode='bilinear')[0])


def test_a_subclass_provides_the_masks():
    base = head()
    with pytest.raises(NotImplementedError):
        base._predict_masks(None, None, img_meta(), base.test_cfg, False)
    with pytest.raises(ValueError, match='FCOSMaskHead predicts masks only'):
        base.predict_by_feat([], [], [], torch.zeros(1, 1, 1, 1),
                             batch_img_metas=[img_meta()], with_nms=False)
    assert base._point_mask(None, None) is None
