"""Every default of PEP's modules is the paper's setting (or the documented
choice where the paper is silent), and every argument check rejects exactly
the invalid values: the boundary values themselves are accepted."""
import pytest
import torch
import torch.nn as nn

from mmdet.registry import MODELS
from mmdet_pep.models import PEPExcavator, PEPHead, PEPPurifier
from pep_testing import tiny_excavator, tiny_head_cfg


def conv_std(module):
    weights = [m.weight for m in module.modules() if isinstance(m, nn.Conv2d)]
    return torch.cat([w.flatten() for w in weights]).std().item()


def test_pep_head_defaults_are_the_papers():
    torch.manual_seed(0)
    head = PEPHead(num_classes=80, in_channels=256)
    # §3.1: four 3x3 convs of 256 channels per subnetwork; SOLO's levels.
    assert head.feat_channels == 256 and len(head.cls_convs) == 4
    assert len(head.desc_convs) == 4
    assert head.cls_convs[0].conv.in_channels == 256
    assert head.desc_convs[0].conv.in_channels == 256 + 2  # CoordConv
    assert head.strides == (8, 8, 16, 32, 32)
    assert head.scale_ranges == ((1, 96), (48, 192), (96, 384), (192, 768),
                                 (384, 2048))
    assert head.pos_scale == 0.2
    assert head.num_grids == (40, 36, 24, 16, 12)
    assert head.max_originals_train == 16
    assert head.norm_cfg == dict(type='GN', num_groups=32, requires_grad=True)
    assert head.cls_convs[0].gn.num_groups == 32
    assert head.cls_convs[0].conv.bias is None  # a norm follows
    # §3.5 / §4.1: B and the descriptors are 256-d, B at stride 4 from P2-P5.
    mfh = head.mask_feature_head
    assert (mfh.feat_channels, mfh.start_level, mfh.end_level,
            mfh.out_channels, mfh.mask_stride) == (128, 0, 3, 256, 4)
    assert mfh.norm_cfg == dict(type='GN', num_groups=32, requires_grad=True)
    assert head.desc_channels == 256 and head.mask_stride == 4
    assert head.conv_cls.out_channels == 81 and head.conv_desc.out_channels \
        == 256
    assert isinstance(head.excavator, PEPExcavator)
    assert isinstance(head.purifier, PEPPurifier)
    assert head.excavator.num_classes == 80
    assert head.excavator.desc_channels == 256
    assert head.excavator.feat_convs[0].conv.in_channels == 256
    assert head.purifier.project[0].in_features == 256 + 2
    # Eq. 1-2 and 7: softmax CE over C+1 classes, sigmoid CE on masks.
    assert type(head.loss_perceive).__name__ == 'CrossEntropyLoss'
    assert not head.loss_perceive.use_sigmoid
    assert head.loss_perceive.loss_weight == 1.0
    assert type(head.loss_mask).__name__ == 'CrossEntropyLoss'
    assert head.loss_mask.use_sigmoid and head.loss_mask.loss_weight == 1.0
    assert head.test_cfg == PEPHead.TEST_CFG_DEFAULTS
    assert head.test_cfg.max_descriptors is None  # no cap, as shipped
    # End to end (§3.3-3.4), no relative coordinates (Eq. 6 over B alone).
    assert not head.detach_excavation and not head.detach_purifier
    assert head.rel_coords is None
    assert head.train_cfg is None
    head.init_weights()
    # init_cfg: Normal(std=0.01) on the convs; background prior 4.6.
    assert 0.008 < conv_std(head.cls_convs) < 0.012
    assert head.conv_cls.bias[:-1].abs().max() == 0
    assert head.conv_cls.bias[-1].item() == pytest.approx(4.6)


def test_tower_convs_have_a_bias_only_without_a_norm():
    head = MODELS.build(tiny_head_cfg(norm_cfg=None))
    for tower in (head.cls_convs, head.desc_convs):
        assert all(m.conv.bias is not None and m.norm_cfg is None
                   for m in tower)


def test_excavator_defaults():
    torch.manual_seed(0)
    exc = PEPExcavator(num_classes=5)
    assert exc.desc_channels == 256 and exc.feat_channels == 16
    assert exc.hidden_channels == 16 and len(exc.feat_convs) == 2
    assert exc.feat_convs[0].conv.in_channels == 256
    assert exc.feat_convs[0].conv.stride == (2, 2)
    assert exc.feat_convs[1].conv.stride == (1, 1)
    assert exc.feat_convs[0].gn.num_groups == 8
    assert (exc.near_ratio, exc.center_radius, exc.max_keys_train,
            exc.num_neg_keys) == (1.5, 1, 8, 2)
    assert exc.param_generator.in_features == 256
    # [feat (16) + rel. xy (2)] x hidden (16), hidden biases, hidden -> 1.
    assert exc.param_generator.out_features == 18 * 16 + 16 + 16 + 1
    assert exc.mine_fcs[0].in_features == 256 + 4
    assert exc.key_cls.out_features == 6
    focal = exc.loss_excavate
    assert type(focal).__name__ == 'FocalLoss' and focal.use_sigmoid
    assert (focal.gamma, focal.alpha, focal.loss_weight) == (2.0, 0.25, 1.0)
    assert type(exc.loss_cls).__name__ == 'CrossEntropyLoss'
    assert not exc.loss_cls.use_sigmoid and exc.loss_cls.loss_weight == 1.0
    exc.init_weights()
    # Conv2d and the dynamic-weight generator start at std 0.01; the mining
    # MLP keeps PyTorch's default init, which is far wider.
    assert 0.008 < conv_std(exc.feat_convs) < 0.012
    assert 0.008 < exc.param_generator.weight.std().item() < 0.012
    assert exc.mine_fcs[0].weight.std().item() > 0.02


def test_purifier_defaults():
    torch.manual_seed(0)
    purifier = PEPPurifier()
    assert purifier.project[0].in_features == 256 + 2
    assert purifier.project[0].out_features == 128
    assert purifier.project[2].out_features == 128
    assert purifier.max_descriptors == 30 and purifier.merge == 'mean'
    assert purifier.logit_scale.item() == 10.0
    assert purifier.logit_bias.item() == -5.0
    loss = purifier.loss_graph
    assert type(loss).__name__ == 'CrossEntropyLoss' and loss.use_sigmoid
    assert loss.loss_weight == 1.0


def test_lovasz_defaults():
    loss = MODELS.build(dict(type='LovaszHingeLoss'))
    assert (loss.input_type, loss.reduction, loss.loss_weight) == ('logits',
                                                                   'mean', 1.)


# ------------------------------------------------------------------ bounds


def head_cfg(**overrides):
    cfg = tiny_head_cfg()
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize('overrides', [
    dict(max_originals_train=1),
    dict(num_classes=1),
    dict(pos_scale=0.),
    dict(pos_scale=1.),
    dict(scale_ranges=((0, 1), ) * 5),
    dict(num_grids=[1, 1, 1, 1, 1]),
])
def test_head_accepts_boundary_values(overrides):
    MODELS.build(head_cfg(**overrides))


@pytest.mark.parametrize('overrides,match', [
    (dict(max_originals_train=0), 'max_originals_train'),
    (dict(num_classes=0), 'num_classes'),
    (dict(pos_scale=-0.01), 'pos_scale'),
    (dict(pos_scale=1.01), 'pos_scale'),
    (dict(scale_ranges=((2, 2), ) * 5), 'scale_ranges'),
    (dict(scale_ranges=((-1, 2), ) * 5), 'scale_ranges'),
    (dict(num_grids=[1, 1, 0, 1, 1]), 'num_grids'),
    (dict(strides=(8, 8, 16, 32)), 'strides'),
    (dict(scale_ranges=((1, 2), ) * 4), 'scale_ranges'),
    (dict(rel_coords='linear'), 'rel_coords'),
    (dict(loss_perceive=dict(type='FocalLoss', use_sigmoid=True)),
     'loss_perceive'),
])
def test_head_rejects_invalid_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(head_cfg(**overrides))


TEST_CFG_RANGES = [
    # (key path, lowest valid, highest valid or None, invalid values)
    (('score_thr', ), 0., 1., (-1e-3, 1.001)),
    (('mask_thr', ), 0., 1., (-1e-3, 1.001)),
    (('filter_thr', ), 0., 1., (-1e-3, 1.001)),
    (('excavate', 'key_thr'), 0., 1., (-1e-3, 1.001)),
    (('purify', 'group_thr'), 0., 1., (-1e-3, 1.001)),
    (('nms_pre', ), 1, None, (0, )),
    (('max_per_img', ), 1, None, (0, )),
    (('excavate', 'max_originals'), 1, None, (0, )),
    (('excavate', 'max_keys'), 1, None, (0, )),
    (('sigma', ), 1e-6, None, (0., -1.)),
    (('min_area', ), 0, None, (-1, 'auto', True)),
    (('max_descriptors', ), 1, None, (0, 2.5, True, '30')),
]


def with_value(path, value):
    if len(path) == 1:
        return {path[0]: value}
    return {path[0]: {path[1]: value}}


@pytest.mark.parametrize('path,low,high,invalid', TEST_CFG_RANGES)
def test_test_cfg_ranges(path, low, high, invalid):
    for value in (low, high):
        if value is not None:
            cfg = PEPHead._check_test_cfg(with_value(path, value))
            assert (cfg[path[0]] if len(path) == 1 else
                    cfg[path[0]][path[1]]) == value
    for value in invalid:
        with pytest.raises(ValueError, match=r'test_cfg\.' + '.'.join(path)):
            PEPHead._check_test_cfg(with_value(path, value))


def test_test_cfg_kernel_and_defaults_of_nested_parts():
    for kernel in ('gaussian', 'linear'):
        assert PEPHead._check_test_cfg(dict(kernel=kernel)).kernel == kernel
    with pytest.raises(ValueError, match='test_cfg.kernel'):
        PEPHead._check_test_cfg(dict(kernel='box'))
    # A partial nested part keeps the defaults of its other keys.
    cfg = PEPHead._check_test_cfg(dict(purify=dict(matrix_nms=True),
                                       excavate=None))
    assert cfg.purify == dict(group_thr=0.5, class_agnostic=False,
                              matrix_nms=True, mask_iou_thr=0.0,
                              rescore=False)
    assert cfg.excavate == PEPHead.TEST_CFG_DEFAULTS['excavate']
    assert PEPHead._check_test_cfg(None) == PEPHead.TEST_CFG_DEFAULTS


@pytest.mark.parametrize('test_cfg,where,key', [
    (dict(score_threshold=0.1), r'in test_cfg;', 'score_threshold'),
    (dict(excavate=dict(key_thresh=0.1)), r'in test_cfg\.excavate;',
     'key_thresh'),
    (dict(purify=dict(thr=0.1)), r'in test_cfg\.purify;', 'thr'),
])
def test_unknown_test_cfg_keys_name_key_and_place(test_cfg, where, key):
    with pytest.raises(ValueError, match=rf"\['{key}'\] {where}"):
        PEPHead._check_test_cfg(test_cfg)


@pytest.mark.parametrize('kwargs', [
    dict(near_ratio=1.0),
    dict(center_radius=0),
    dict(num_neg_keys=0),
    dict(max_keys_train=1, num_convs=1),
])
def test_excavator_accepts_boundary_values(kwargs):
    tiny_excavator(**kwargs)


@pytest.mark.parametrize('kwargs,match', [
    (dict(near_ratio=0.99), 'near_ratio'),
    (dict(center_radius=-1), '^center_radius must'),
    (dict(num_neg_keys=-1), '^num_neg_keys must'),
    (dict(max_keys_train=0), 'max_keys_train'),
    (dict(num_convs=0), 'num_convs'),
])
def test_excavator_rejects_invalid_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_excavator(**kwargs)


@pytest.mark.parametrize('name', ['in_channels', 'desc_channels',
                                  'feat_channels', 'hidden_channels'])
def test_excavator_channels_must_be_positive(name):
    kwargs = dict(num_classes=2, in_channels=8, desc_channels=8,
                  feat_channels=4, hidden_channels=4, norm_cfg=None)
    kwargs[name] = 1
    PEPExcavator(**kwargs)
    kwargs[name] = 0
    with pytest.raises(ValueError, match='must be >= 1'):
        PEPExcavator(**kwargs)


def test_purifier_bounds():
    PEPPurifier(in_channels=1, embed_channels=1, max_descriptors=2)
    for kwargs in (dict(in_channels=0), dict(embed_channels=0)):
        with pytest.raises(ValueError, match='must be >= 1'):
            PEPPurifier(**kwargs)
    with pytest.raises(ValueError, match='max_descriptors'):
        PEPPurifier(max_descriptors=1)
    for merge in ('mean', 'best'):
        assert PEPPurifier(in_channels=4, merge=merge).merge == merge
