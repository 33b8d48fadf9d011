"""tools/model_converters/sipmask_official_to_mmdet.py on synthetic official
checkpoints: state dicts with the official key names and shapes, written
out below from the official module definitions (JialeCao001/SipMask at
bc63fa9; ``SM`` = SipMask-mmdetection/mmdet, ``VIS`` = SipMask-VIS/mmdet),
for the official recipes and the small synthetic configs. Every key maps,
none is left over, the shapes are those of the model this package builds
from the corresponding config, and the result loads with strict=True."""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmdet.registry import MODELS
from mmdet_pep.utils import load_checkpoint_weights_only
from pep_testing import ROOT, load_tool

CONFIGS = osp.join(ROOT, 'configs', 'sipmask')


@pytest.fixture(scope='module')
def tool():
    return load_tool('model_converters/sipmask_official_to_mmdet')


# The official modules --------------------------------------------------------

BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')


def official_bn(prefix, channels):
    """An nn.BatchNorm2d (the official norm of the backbone; PyTorch 1.1
    also saves num_batches_tracked)."""
    out = {f'{prefix}.{k}': (channels, ) for k in BN_KEYS}
    out[f'{prefix}.num_batches_tracked'] = ()
    return out


def official_resnet(depth, dcn_stages=()):
    """SM/models/backbones/resnet.py: the stem conv1 (64, 3, 7, 7) and bn1
    (:448-458); stage i with planes 64 * 2^i (:418) and (2, 2, 2, 2) /
    (3, 4, 6, 3) / (3, 4, 23, 3) blocks for depth 18 / 50 / 101
    (:351-357); BasicBlock conv1/conv2 3x3 (:34-49), Bottleneck conv1 1x1,
    conv2 3x3, conv3 1x1 to 4 planes (:132-177), bnK after convK, all
    without bias; a downsample conv 1x1 + BN in the first block when the
    shape changes (:256-267); a DCN conv2 (DeformConvPack: the same weight,
    conv_offset 3x3 to 18 with bias, SM/ops/dcn/deform_conv.py:226-228,
    279-286) on blocks 0, 3, 6, ... of the DCN stages (:269-291)."""
    bottleneck = depth >= 50
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    expansion = 4 if bottleneck else 1
    shapes = {'backbone.conv1.weight': (64, 3, 7, 7)}
    shapes.update(official_bn('backbone.bn1', 64))
    inplanes = 64
    for stage, num_blocks in enumerate(blocks):
        planes = 64 * 2**stage
        for i in range(num_blocks):
            p = f'backbone.layer{stage + 1}.{i}'
            if bottleneck:
                convs = [(planes, inplanes, 1, 1), (planes, planes, 3, 3),
                         (planes * 4, planes, 1, 1)]
            else:
                convs = [(planes, inplanes, 3, 3), (planes, planes, 3, 3)]
            for k, shape in enumerate(convs, 1):
                shapes[f'{p}.conv{k}.weight'] = shape
                shapes.update(official_bn(f'{p}.bn{k}', shape[0]))
            if stage in dcn_stages and i % 3 == 0:
                shapes[f'{p}.conv2.conv_offset.weight'] = (18, planes, 3, 3)
                shapes[f'{p}.conv2.conv_offset.bias'] = (18, )
            if i == 0 and (stage > 0 or inplanes != planes * expansion):
                shapes[f'{p}.downsample.0.weight'] = (planes * expansion,
                                                      inplanes, 1, 1)
                shapes.update(
                    official_bn(f'{p}.downsample.1', planes * expansion))
            inplanes = planes * expansion
    return shapes


def conv(prefix, cout, cin, k):
    """An nn.Conv2d (or a ConvModule's ``.conv``) k x k with bias."""
    return {f'{prefix}.weight': (cout, cin, k, k), f'{prefix}.bias': (cout, )}


def official_fpn(in_channels, out_channels):
    """SM/models/necks/fpn.py: start_level 1, a 1x1 lateral and a 3x3
    output ConvModule (with bias, no norm) per used level (:86-109), two
    extra 3x3 convs on the outputs appended to fpn_convs (:111-129)."""
    shapes = {}
    used = in_channels[1:]
    for i, channels in enumerate(used):
        shapes.update(conv(f'neck.lateral_convs.{i}.conv', out_channels,
                           channels, 1))
    for i in range(len(used) + 2):
        shapes.update(conv(f'neck.fpn_convs.{i}.conv', out_channels,
                           out_channels, 3))
    return shapes


def official_tower(prefix, num, in_channels, channels, norm):
    """ConvModule 3x3 convs, bias only without norm, GroupNorm named 'gn'
    (SM/ops/norm.py:5-7)."""
    shapes = {}
    for i in range(num):
        cin = in_channels if i == 0 else channels
        shapes[f'{prefix}.{i}.conv.weight'] = (channels, cin, 3, 3)
        if norm:
            shapes[f'{prefix}.{i}.gn.weight'] = (channels, )
            shapes[f'{prefix}.{i}.gn.bias'] = (channels, )
        else:
            shapes[f'{prefix}.{i}.conv.bias'] = (channels, )
    return shapes


def official_head(num_classes, channels, stacked_convs, norm=True,
                  basis_channels=512, rescoring=False, track=False):
    """The image head, SM/models/anchor_heads/sipmask_head.py:159-219
    (``num_classes`` counts the background, :137), and the VIS head,
    VIS/models/anchor_heads/sipmask_head.py:174-232 (the same layers
    without SipMask++'s, plus the track branch):

    - cls_convs: stacked_convs - 1, reg_convs: stacked_convs (:162-185);
    - fcos_cls to num_classes - 1, fcos_reg to 4, fcos_centerness to 1,
      3x3 (:186-189); a Scale per level (:190);
    - FeatureAlign (:28-40, 194): conv_offset 1x1 4 -> 4 groups x 18, no
      bias; conv_adaption, a DeformConv 3x3 without bias; a GroupNorm built
      even without norm;
    - sip_cof 3x3 to 32 x 4 (:195); sip_mask_lat0 1x1 768 -> 512 and
      sip_mask_lat 3x3 512 -> 32 (:197-198): 768 = 3 x 256 channels, 512
      hidden (``basis_channels`` for the small configs);
    - SipMask++ (rescoring_flag): 6 ConvModules 3x3 with bias over
      1, 16, 16, 16, 32, 64, 128 channels and mask_scoring 1x1 128 ->
      num_classes - 1 (:200-216);
    - VIS: track_convs, stacked_convs - 1 ConvModules (VIS :219-231), and
      sipmask_track 1x1 3 x channels -> 512 (VIS :232).
    """
    p = 'bbox_head'
    shapes = {}
    shapes.update(official_tower(f'{p}.cls_convs', stacked_convs - 1,
                                 channels, channels, norm))
    shapes.update(official_tower(f'{p}.reg_convs', stacked_convs, channels,
                                 channels, norm))
    shapes.update(conv(f'{p}.fcos_cls', num_classes - 1, channels, 3))
    shapes.update(conv(f'{p}.fcos_reg', 4, channels, 3))
    shapes.update(conv(f'{p}.fcos_centerness', 1, channels, 3))
    shapes.update({f'{p}.scales.{i}.scale': () for i in range(5)})
    shapes[f'{p}.feat_align.conv_offset.weight'] = (4 * 18, 4, 1, 1)
    shapes[f'{p}.feat_align.conv_adaption.weight'] = (channels, channels, 3,
                                                      3)
    shapes[f'{p}.feat_align.norm.weight'] = (channels, )
    shapes[f'{p}.feat_align.norm.bias'] = (channels, )
    shapes.update(conv(f'{p}.sip_cof', 32 * 4, channels, 3))
    shapes.update(conv(f'{p}.sip_mask_lat', 32, basis_channels, 3))
    shapes.update(conv(f'{p}.sip_mask_lat0', basis_channels, 3 * channels,
                       1))
    if rescoring:
        widths = [1, 16, 16, 16, 32, 64, 128]
        for i in range(6):
            shapes.update(conv(f'{p}.convs_scoring.{i}.conv', widths[i + 1],
                               widths[i], 3))
        shapes.update(conv(f'{p}.mask_scoring', num_classes - 1, 128, 1))
    if track:
        shapes.update(official_tower(f'{p}.track_convs', stacked_convs - 1,
                                     channels, channels, norm))
        shapes.update(conv(f'{p}.sipmask_track', 512, 3 * channels, 1))
    return shapes


R50_IN = [256, 512, 1024, 2048]
R18_IN = [64, 128, 256, 512]

#: config -> the official checkpoint of its model: (backbone, FPN, head).
OFFICIAL = {
    # SM configs/sipmask/sipmask_r50_caffe_fpn_gn_1x.py: R-50 caffe, FPN
    # 256, 81 classes (with background), stacked_convs 4, GN.
    'sipmask_r50-caffe_fpn_gn-head_1x_coco.py':
    lambda: {**official_resnet(50), **official_fpn(R50_IN, 256),
             **official_head(81, 256, 4)},
    # SM configs/sipmask/sipmask++_r101_caffe_fpn_ssd_6x.py: R-101 with DCN
    # on stages 2-4, stacked_convs 2, no norm, rescoring.
    'sipmask-pp_r101-caffe-dcn_fpn_ssd-544_6x_coco.py':
    lambda: {**official_resnet(101, dcn_stages=(1, 2, 3)),
             **official_fpn(R50_IN, 256),
             **official_head(81, 256, 2, norm=False, rescoring=True)},
    # VIS configs/sipmask/sipmask_r50_caffe_fpn_gn_1x.py:1-39: 41 classes,
    # stacked_convs 3.
    'sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019.py':
    lambda: {**official_resnet(50), **official_fpn(R50_IN, 256),
             **official_head(41, 256, 3, track=True)},
    # The small configs, the official modules at their sizes: R-18, 128
    # channels, 256 hidden basis channels, 3 classes, stacked_convs 2.
    'sipmask_r18_fpn_1200it_synthetic.py':
    lambda: {**official_resnet(18), **official_fpn(R18_IN, 128),
             **official_head(4, 128, 2, basis_channels=256)},
    'sipmask-vis_r18_fpn_1200it_synthetic-vis.py':
    lambda: {**official_resnet(18), **official_fpn(R18_IN, 128),
             **official_head(4, 128, 2, basis_channels=256, track=True)},
}


def synthetic(shapes, seed=0):
    """Distinct random values per key, so that a swap shows (BatchNorm's
    step counters as integers)."""
    gen = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (k, torch.tensor(i) if k.endswith('num_batches_tracked') else
         torch.randn(s, generator=gen)) for i, (k, s) in enumerate(
             shapes.items()))


def build(name):
    """The model of a config and its kind (``'image'`` or ``'vis'``)."""
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    return MODELS.build(cfg.model), 'vis' if 'detector' in cfg.model \
        else 'image'


@pytest.mark.parametrize('name', list(OFFICIAL))
def test_every_official_key_maps_onto_the_model_one_to_one(tool, name):
    official = synthetic(OFFICIAL[name]())
    model, target = build(name)
    converted, report = tool.convert_state_dict(official, target)
    model_state = model.state_dict()
    # SipMask++ has no norm: the official alignment's unused GroupNorm is
    # the only key left out, and it is listed.
    unused = {f'bbox_head.feat_align.norm.{k}'
              for k in ('weight', 'bias')} if 'pp' in name else set()
    assert set(report['dropped']) == unused
    assert len(converted) == len(official) - len(unused)
    assert set(converted) == set(model_state)
    for key, value in converted.items():
        assert value.shape == model_state[key].shape, key
    model.load_state_dict(converted, strict=True)
    # Values travel with their names.
    for key, value in official.items():
        if key in unused:
            continue
        ours = tool.rename(key)
        if target == tool.VIS and not ours.startswith('track_head.'):
            ours = 'detector.' + ours
        assert converted[ours] is value


def test_renames_by_hand(tool):
    cases = {
        'bbox_head.fcos_cls.weight': 'bbox_head.conv_cls.weight',
        'bbox_head.fcos_centerness.bias': 'bbox_head.conv_centerness.bias',
        'bbox_head.sip_cof.weight': 'bbox_head.conv_coeff.weight',
        'bbox_head.sip_mask_lat0.bias': 'bbox_head.basis_fuse.bias',
        'bbox_head.sip_mask_lat.bias': 'bbox_head.basis_out.bias',
        'bbox_head.convs_scoring.5.conv.weight':
        'bbox_head.mask_iou_convs.5.conv.weight',
        'bbox_head.mask_scoring.bias': 'bbox_head.conv_mask_iou.bias',
        'bbox_head.track_convs.1.gn.weight': 'track_head.track_convs.1.gn.'
        'weight',
        'bbox_head.sipmask_track.weight': 'track_head.conv_embed.weight',
        # SipMask-VIS' older ResNet holds a DCN's offsets beside conv2
        # (VIS/models/backbones/resnet.py:171-178).
        'backbone.layer3.0.conv2_offset.weight':
        'backbone.layer3.0.conv2.conv_offset.weight',
        'backbone.layer1.0.downsample.1.running_var':
        'backbone.layer1.0.downsample.1.running_var',
    }
    for official, ours in cases.items():
        assert tool.rename(official) == ours
    for unknown in ('bbox_head.fcos_cls.scale', 'backbone.fc.weight',
                    'neck.fpn_convs.0.bn.weight', 'rpn_head.conv.weight'):
        assert tool.rename(unknown) is None


def write_official(path, shapes, classes=None, wrapped=False):
    state = synthetic(shapes)
    if wrapped:
        state = OrderedDict(('module.' + k, v) for k, v in state.items())
    meta = dict(mmdet_version='1.0rc0+unknown', epoch=12)
    if classes:
        meta['CLASSES'] = classes
    torch.save(dict(meta=meta, state_dict=state), path)
    return state


def test_main_writes_a_checkpoint_that_loads_strictly(tool, tmp_path,
                                                      capsys):
    name = 'sipmask-vis_r18_fpn_1200it_synthetic-vis.py'
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'out/ours.pth')
    write_official(src, OFFICIAL[name](), ('disc', 'square', 'triangle'),
                   wrapped=True)
    assert tool.main([src, dst, '--config', osp.join(CONFIGS, name)]) == 0
    assert 'vis checkpoint -> vis model' in capsys.readouterr().out
    ckpt = load_checkpoint_weights_only(dst, map_location='cpu')
    assert ckpt['meta']['source'] == ckpt['meta']['target'] == 'vis'
    assert ckpt['meta']['dropped'] == ckpt['meta']['skipped'] == []
    assert ckpt['meta']['dataset_meta'] == dict(
        classes=('disc', 'square', 'triangle'))
    model, _ = build(name)
    load_checkpoint(model, dst, strict=True)


def test_image_weights_for_a_video_model(tool, tmp_path, capsys):
    """The official SipMask-VIS recipe: the COCO image model's weights
    (81 classes) into a VIS model of other classes. Without
    --skip-unmatched the classifier's shape fails, named; with it, the
    classifier is left out and listed, and the track head (absent from an
    image checkpoint) too: exactly these keys keep their
    initialisation."""
    name = 'sipmask-vis_r18_fpn_1200it_synthetic-vis.py'
    src, dst = str(tmp_path / 'coco.pth'), str(tmp_path / 'vis.pth')
    write_official(src, {**official_resnet(18), **official_fpn(R18_IN, 128),
                         **official_head(81, 128, 2, basis_channels=256)})
    config = osp.join(CONFIGS, name)
    assert tool.main([src, dst, '--config', config]) == 1
    err = capsys.readouterr().err
    assert 'detector.bbox_head.conv_cls.weight (80, 128, 3, 3) vs ' \
        '(3, 128, 3, 3)' in err and '--skip-unmatched' in err
    assert not osp.exists(dst)
    assert tool.main([src, dst, '--config', config,
                      '--skip-unmatched']) == 0
    out = capsys.readouterr().out
    assert 'skipped detector.bbox_head.conv_cls.weight' in out
    ckpt = load_checkpoint_weights_only(dst, map_location='cpu')
    assert ckpt['meta']['skipped'] == ['detector.bbox_head.conv_cls.weight',
                                       'detector.bbox_head.conv_cls.bias']
    assert 'dataset_meta' not in ckpt['meta']
    model, _ = build(name)
    missing, unexpected = model.load_state_dict(ckpt['state_dict'],
                                                strict=False)
    assert unexpected == []
    assert set(missing) == set(ckpt['meta']['skipped']) | set(
        ckpt['meta']['absent'])
    assert ckpt['meta']['absent'] and all(
        k.startswith('track_head.') for k in ckpt['meta']['absent'])


def test_fails_naming_the_keys(tool, tmp_path):
    name = 'sipmask_r18_fpn_1200it_synthetic.py'
    shapes = OFFICIAL[name]()
    # A key no rule maps.
    bad = synthetic({**shapes, 'bbox_head.sip_extra.weight': (1, )})
    with pytest.raises(tool.ConversionError, match='sip_extra.weight'):
        tool.convert_state_dict(bad)
    # A VIS checkpoint has no place in an image model.
    vis = synthetic(OFFICIAL['sipmask-vis_r18_fpn_1200it_synthetic-vis.py']())
    with pytest.raises(tool.ConversionError, match='SipMask-VIS checkpoint'):
        tool.convert_state_dict(vis, tool.IMAGE)
    # Against the config's model: a key missing, a key of another size, a
    # key the model does not have.
    model_state = build(name)[0].state_dict()
    converted, _ = tool.convert_state_dict(synthetic(shapes))
    del converted['bbox_head.basis_out.bias']
    converted['bbox_head.conv_coeff.bias'] = torch.zeros(7)
    converted['bbox_head.reg_convs.5.conv.weight'] = torch.zeros(1)
    with pytest.raises(tool.ConversionError) as error:
        tool.check_against(converted, model_state, tool.IMAGE)
    assert 'not in the checkpoint: bbox_head.basis_out.bias' in str(
        error.value)
    assert 'bbox_head.conv_coeff.bias (7,) vs (128,)' in str(error.value)
    assert 'not in the model: bbox_head.reg_convs.5.conv.weight' in str(
        error.value)
    # --skip-unmatched does not excuse a missing key.
    with pytest.raises(tool.ConversionError, match='basis_out.bias'):
        tool.check_against(converted, model_state, tool.IMAGE,
                           skip_unmatched=True)
    # Not a checkpoint at all.
    path = str(tmp_path / 'list.pth')
    torch.save([1, 2], path)
    with pytest.raises(tool.ConversionError, match='not a checkpoint'):
        tool.load_official(path)


def documented_command(config):
    """The converter's arguments as the config's comment writes them."""
    with open(config) as f:
        lines = [line.lstrip('#').strip() for line in f]
    start = next(i for i, line in enumerate(lines)
                 if 'sipmask_official_to_mmdet.py' in line)
    words = []
    for line in lines[start:]:
        words += [w for w in line.split() if w != '\\']
        if not line.endswith('\\'):
            return words[2:]  # after `python tools/.../...py`


def test_the_youtube_vis_load_from_is_made_as_documented(tool, tmp_path):
    """The command in the YouTube-VIS config, on an official COCO SipMask
    R-50 1x (81 classes, 4-conv towers), writes the config's ``load_from``
    without the classifier and the towers' last convs (the VIS model has 40
    classes and 3-conv towers); mmengine loads it into the VIS model (as
    the runner does, strict=False) and every other detector weight comes
    from it."""
    name = 'sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019.py'
    config = osp.join(CONFIGS, name)
    src, dst, *options = documented_command(config)
    assert src == 'sipmask_r50_caffe_1x.pth'
    assert dst == Config.fromfile(config).load_from
    assert options == ['--config', f'configs/sipmask/{name}',
                       '--skip-unmatched']
    official = write_official(
        str(tmp_path / src), OFFICIAL['sipmask_r50-caffe_fpn_gn-head_1x_coco'
                                      '.py']())
    out = str(tmp_path / dst)
    assert tool.main([str(tmp_path / src), out, '--config', config,
                      '--skip-unmatched']) == 0
    skipped = load_checkpoint_weights_only(out)['meta']['skipped']
    head = 'detector.bbox_head.'
    assert skipped == [
        head + 'cls_convs.2.conv.weight', head + 'cls_convs.2.gn.weight',
        head + 'cls_convs.2.gn.bias', head + 'reg_convs.3.conv.weight',
        head + 'reg_convs.3.gn.weight', head + 'reg_convs.3.gn.bias',
        head + 'conv_cls.weight', head + 'conv_cls.bias'
    ]
    model, _ = build(name)
    load_checkpoint(model, out, strict=False)
    state = model.state_dict()
    for key, value in official.items():
        ours = 'detector.' + tool.rename(key)
        if ours not in skipped:
            assert torch.equal(state[ours], value), ours
