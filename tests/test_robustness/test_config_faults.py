"""Config faults: misspelt keys and invalid values inside the PEP model
config must fail when the model is built, naming the key.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from pep_testing import tiny_head_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))




@pytest.fixture(scope='module')
def synthetic_model():
    """The model of the synthetic config with a narrow backbone."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/pep/pep_r18_fpn_1200it_synthetic.py')).model
    cfg.backbone.base_channels = 8
    cfg.neck.in_channels = [8, 16, 32, 64]
    return cfg


@pytest.mark.parametrize('part,key,cls', [
    ('excavator', 'near_ration', 'PEPExcavator'),
    ('purifier', 'max_descriptor', 'PEPPurifier'),
])
def test_misspelt_key_inside_excavator_or_purifier(synthetic_model, part,
                                                   key, cls):
    cfg = copy.deepcopy(synthetic_model)
    cfg.mask_head[part][key] = 2
    with pytest.raises(TypeError, match=f"{cls}.*'{key}'"):
        MODELS.build(cfg)


def test_misspelt_key_in_a_loss_of_the_excavator(synthetic_model):
    cfg = copy.deepcopy(synthetic_model)
    cfg.mask_head.excavator.loss_excavate.gama = 2.0
    with pytest.raises(TypeError, match="FocalLoss.*'gama'"):
        MODELS.build(cfg)


def test_the_unchanged_config_builds(synthetic_model):
    """The control for the tests above and below: without the fault the
    same config builds, so their errors come from the fault alone."""
    model = MODELS.build(copy.deepcopy(synthetic_model))
    assert type(model).__name__ == 'PEP'
    head = model.mask_head
    assert type(head).__name__ == 'PEPHead'
    assert type(head.excavator).__name__ == 'PEPExcavator'
    assert type(head.purifier).__name__ == 'PEPPurifier'
    # The values of the config, not defaults, reached the modules.
    assert head.num_classes == synthetic_model.mask_head.num_classes == 3
    assert head.num_grids == tuple(synthetic_model.mask_head.num_grids)
    assert (head.excavator.near_ratio ==
            synthetic_model.mask_head.excavator.near_ratio)
    assert (head.purifier.max_descriptors ==
            synthetic_model.mask_head.purifier.max_descriptors)


def head_with(part=None, **values):
    cfg = tiny_head_cfg()
    if part is None:
        cfg.update(values)
    elif part == 'test_cfg':
        cfg['test_cfg'] = {**cfg['test_cfg'], **values}
    else:
        cfg[part] = {**cfg[part], **values}
    return cfg


# Validated in the model code but not tested elsewhere.
@pytest.mark.parametrize('part,values,match', [
    ('excavator', dict(num_neg_keys=-1), 'num_neg_keys'),
    ('excavator', dict(num_convs=0), 'num_convs'),
    ('purifier', dict(max_descriptors=0), 'max_descriptors'),
    ('purifier', dict(max_descriptors=-3), 'max_descriptors'),
    (None, dict(max_originals_train=0), 'max_originals_train'),
    ('test_cfg', dict(max_per_img=0), 'max_per_img'),
    ('test_cfg', dict(score_thr=1.5), 'score_thr'),
    ('test_cfg', dict(excavate=dict(max_originals=0)), 'max_originals'),
    ('test_cfg', dict(excavate=dict(key_thr=1.5)), 'key_thr'),
])
def test_invalid_values_are_rejected(part, values, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(head_with(part, **values))


@pytest.mark.parametrize('part,values,match', [
    # Silently no positive cells: nothing is learned.
    pytest.param(None, dict(pos_scale=-0.2), 'pos_scale'),
    # Crashes in the first forward, not at build.
    pytest.param(None, dict(num_classes=0), 'num_classes'),
    # Silently a level without instances.
    pytest.param(None, dict(scale_ranges=((24, 1), (12, 48), (24, 96),
                                          (48, 192), (96, 512))),
                 'scale_ranges'),
    # Crashes in the first forward.
    pytest.param(None, dict(num_grids=[0, 10, 8, 6, 4]), 'num_grids'),
    # Misspelt test_cfg keys are silently ignored.
    pytest.param('test_cfg', dict(score_threshold=0.5), 'score_threshold'),
    pytest.param('test_cfg', dict(excavate=dict(key_thresh=0.5)),
                 'key_thresh'),
    pytest.param('test_cfg', dict(purify=dict(group_threshold=0.5)),
                 'group_threshold'),
    # Matrix NMS (purifier off): an unknown kernel fails at the first
    # validation; sigma <= 0 or filter_thr outside [0, 1] silently change
    # the suppression.
    pytest.param('test_cfg', dict(kernel='gauss'), 'kernel'),
    pytest.param('test_cfg', dict(sigma=0.), 'sigma'),
    pytest.param('test_cfg', dict(filter_thr=-1.), 'filter_thr'),
    # Crashes in the first forward / silently a degenerate purifier.
    pytest.param('excavator', dict(feat_channels=0), 'channels'),
    pytest.param('excavator', dict(hidden_channels=0), 'channels'),
    pytest.param('purifier', dict(embed_channels=0), 'channels'),
])
def test_more_invalid_values_are_rejected(part, values, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(head_with(part, **values))


@pytest.mark.parametrize('test_cfg', [None, dict(mask_thr=0.5)])
def test_missing_test_cfg_falls_back_to_documented_defaults(test_cfg):
    """``test_cfg=None`` or one without ``score_thr`` builds with
    ``PEPHead.TEST_CFG_DEFAULTS`` and predicts, instead of raising
    AttributeError at the first validation, i.e. after all of training."""
    from pep_testing import fpn_feats, img_meta
    head = MODELS.build(tiny_head_cfg(test_cfg=test_cfg))
    for key, value in head.TEST_CFG_DEFAULTS.items():
        if key not in (test_cfg or {}):
            assert head.test_cfg[key] == value
    with torch.no_grad():
        results = head.predict_by_feat(
            *head(fpn_feats()), batch_img_metas=[img_meta()], rescale=True)
    assert len(results) == 1 and results[0].masks.shape[1:] == (64, 64)
