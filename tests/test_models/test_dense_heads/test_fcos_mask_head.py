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


# Three locations x two classes. Location 0 has the best class score but a
# poor centerness; location 2's second class is under score_thr.
SCORES = torch.tensor([[0.90, 0.10], [0.60, 0.50], [0.70, 0.01]])
CENTERNESS = torch.tensor([0.1, 1.0, 0.9])


def candidates(rank, nms_pre, score_thr=0.05):
    cfg = ConfigDict(nms_pre=nms_pre, nms_pre_rank=rank, score_thr=score_thr)
    scores, labels, locs = FCOSMaskHead.level_candidates(
        SCORES, CENTERNESS, cfg)
    assert torch.equal(scores, SCORES[locs, labels])
    return list(zip(locs.tolist(), labels.tolist()))


def test_level_candidates_by_class_score_is_mmdets_rule():
    from mmdet.models.utils import filter_scores_and_topk
    assert candidates('cls', 2) == [(0, 0), (2, 0)]
    scores, labels, keep, _ = filter_scores_and_topk(SCORES, 0.05, 2)
    assert candidates('cls', 2) == list(zip(keep.tolist(), labels.tolist()))


def test_level_candidates_by_cls_x_centerness_over_pairs():
    # cls x ctr: (1,0) 0.60, (2,0) 0.63, (1,1) 0.50, (0,0) 0.09, (0,1) 0.01.
    assert candidates('cls_ctr', 3) == [(2, 0), (1, 0), (1, 1)]
    # The threshold is on the class score alone: (2,1) (0.01) never enters.
    assert (2, 1) not in candidates('cls_ctr', None)
    assert len(candidates('cls_ctr', None)) == 5


def test_level_candidates_by_cls_x_centerness_over_locations():
    # Best cls x ctr per location: 0.09, 0.60, 0.63 -> locations 2 and 1,
    # then every class of theirs above score_thr.
    assert sorted(candidates('cls_ctr_location', 2)) == [(1, 0), (1, 1),
                                                          (2, 0)]
    # A location cut keeps all its classes; without a cut, every pair.
    assert sorted(candidates('cls_ctr_location', 3)) == sorted(
        candidates('cls', None))


def test_level_candidates_of_an_empty_level():
    cfg = ConfigDict(nms_pre=10, score_thr=0.05)
    for rank in FCOSMaskHead.NMS_PRE_RANKS:
        cfg.nms_pre_rank = rank
        scores, labels, locs = FCOSMaskHead.level_candidates(
            torch.zeros(4, 3), torch.ones(4), cfg)
        assert scores.shape == labels.shape == locs.shape == (0, )


def test_nms_pre_rank_defaults_follow_each_official_code():
    from mmdet_pep.models.dense_heads import EmbedMaskHead, SipMaskHead
    assert FCOSMaskHead.TEST_CFG_DEFAULTS['nms_pre_rank'] == 'cls'
    assert EmbedMaskHead.TEST_CFG_DEFAULTS['nms_pre_rank'] == 'cls_ctr'
    assert SipMaskHead.TEST_CFG_DEFAULTS['nms_pre_rank'] == \
        'cls_ctr_location'
    with pytest.raises(ValueError, match='nms_pre_rank'):
        head(nms_pre_rank='centerness')
