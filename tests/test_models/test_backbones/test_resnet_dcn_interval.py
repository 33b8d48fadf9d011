"""ResNetDCNInterval: SipMask++'s deformable convs on every third block."""
import pytest
import torch
from mmcv.ops import DeformConv2dPack

from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS

DCN = dict(type='DCN', deform_groups=1, fallback_on_stride=False)


def build(**kwargs):
    cfg = dict(
        type='ResNetDCNInterval',
        depth=101,
        base_channels=8,
        dcn=DCN,
        stage_with_dcn=(False, True, True, True),
        init_cfg=None)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def dcn_blocks(model):
    return [[
        i for i, block in enumerate(layer)
        if isinstance(block.conv2, DeformConv2dPack)
    ] for layer in (model.layer1, model.layer2, model.layer3, model.layer4)]


def test_dcn_on_the_first_and_every_third_block_of_dcn_stages():
    # R-101 has 3, 4, 23 and 3 blocks.
    assert dcn_blocks(build()) == [[], [0, 3], list(range(0, 23, 3)), [0]]
    assert dcn_blocks(build(dcn_interval=2)) == [[], [0, 2],
                                                 list(range(0, 23, 2)),
                                                 [0, 2]]
    # Interval 1 is mmdet's ResNet, every block of the stage.
    assert dcn_blocks(build(dcn_interval=1)) == [[], [0, 1, 2, 3],
                                                 list(range(23)), [0, 1, 2]]
    assert dcn_blocks(build(dcn=None, stage_with_dcn=(False, ) * 4)) == [
        [], [], [], []
    ]


def test_forward_and_parameters_match_resnet():
    torch.manual_seed(0)
    model = build(depth=50)
    ref = ResNet(depth=50, base_channels=8, init_cfg=None)
    x = torch.randn(1, 3, 64, 64)
    outs = model(x)
    assert [o.shape for o in outs] == [o.shape for o in ref(x)]
    # Only the DCN blocks differ from a plain ResNet: their offset convs.
    extra = set(dict(model.named_parameters())) - set(
        dict(ref.named_parameters()))
    assert extra and all('conv_offset' in name for name in extra)
    assert {name.split('.conv2')[0] for name in extra} == {
        'layer2.0', 'layer2.3', 'layer3.0', 'layer3.3', 'layer4.0'
    }


def test_bad_interval():
    with pytest.raises(ValueError, match='dcn_interval'):
        build(dcn_interval=0)
