"""sipmask_official_to_mmdet.py --from-mmdet-pep-image: the synthetic image
models' weights (SipMask, Mask R-CNN; from init_weights(), on narrow
copies of the configs) in the names of the video models that start from
them (SipMask-VIS, MaskTrack R-CNN). Every image key maps to a video key
of the same shape and value, the track head's keys are the only ones
missing, and the file loads into the video model with no other missing or
unexpected key."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmdet.registry import MODELS
from mmdet_pep.utils import load_checkpoint_weights_only
from pep_testing import ROOT, load_tool

CLASSES = ('disc', 'square', 'triangle')
# (image config, the video config that starts from it)
PAIRS = {
    'SipMask-VIS': ('configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py',
                    'configs/sipmask/'
                    'sipmask-vis_r18_fpn_1200it_synthetic-vis.py'),
    'MaskTrack-RCNN': ('configs/masktrack_rcnn/'
                       'mask-rcnn_r18_fpn_1200it_synthetic.py',
                       'configs/masktrack_rcnn/'
                       'masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py'),
}
NARROW = ('backbone=dict(base_channels=8), '
          'neck=dict(in_channels=[8, 16, 32, 64])')


@pytest.fixture(scope='module')
def tool():
    return load_tool('model_converters/sipmask_official_to_mmdet')


def tiny(tmp_path, config, video):
    """``config`` with a ResNet-18 of 8 base channels (a file: the
    converter builds the model of a config file)."""
    body = f'dict(detector=dict({NARROW}))' if video else f'dict({NARROW})'
    path = tmp_path / ('tiny_' + osp.basename(config))
    path.write_text(f"_base_ = '{osp.join(ROOT, config)}'\n"
                    f'model = {body}\n')
    return str(path)


def image_checkpoint(config, path):
    """An image model of ``config`` with its initial weights, saved as
    mmengine's Runner saves it (``meta`` with the data set's classes,
    ``state_dict``)."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.save(
        dict(meta=dict(dataset_meta=dict(classes=CLASSES)),
             state_dict=model.state_dict()), path)
    return model.state_dict()


def test_the_configs_pair_up():
    """Each video config names its image config in ``image_init``, and
    the image model is the video model's detector, key by key."""
    for image, video in PAIRS.values():
        cfg = Config.fromfile(osp.join(ROOT, video))
        assert cfg.image_init.config == image and cfg.image_init.seed == 0
        assert cfg.load_from.startswith('checkpoints/')
        detector = MODELS.build(
            Config.fromfile(osp.join(ROOT, image)).model).state_dict()
        vis = MODELS.build(cfg.model).state_dict()
        assert {k: v.shape for k, v in detector.items()} == {
            k[len('detector.'):]: v.shape
            for k, v in vis.items() if k.startswith('detector.')
        }


def test_mask_rcnn_is_masktrack_rcnns_detector_on_sipmasks_data():
    """The image Mask R-CNN: MaskTrack R-CNN's detector config exactly,
    on the image SipMask's data, schedule and runtime."""
    image, video = PAIRS['MaskTrack-RCNN']
    mask_rcnn = Config.fromfile(osp.join(ROOT, image)).to_dict()
    masktrack = Config.fromfile(osp.join(ROOT, video)).to_dict()
    sipmask = Config.fromfile(osp.join(ROOT,
                                       PAIRS['SipMask-VIS'][0])).to_dict()
    model = mask_rcnn.pop('model')
    preprocessor = model.pop('data_preprocessor')
    assert model == masktrack['model']['detector']
    assert {k: preprocessor[k] for k in ('mean', 'std', 'bgr_to_rgb')} == {
        k: sipmask['model']['data_preprocessor'][k]
        for k in ('mean', 'std', 'bgr_to_rgb')
    }
    sipmask.pop('model')
    assert mask_rcnn == sipmask


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_image_weights_map_onto_the_video_model(tool, tmp_path, capsys,
                                                name):
    image_cfg, video_cfg = (tiny(tmp_path, c, video)
                            for c, video in zip(PAIRS[name], (False, True)))
    src, dst = str(tmp_path / 'image.pth'), str(tmp_path / 'out' / 'vis.pth')
    image = image_checkpoint(image_cfg, src)
    assert tool.main([src, dst, '--from-mmdet-pep-image', '--config',
                      video_cfg]) == 0
    out = capsys.readouterr().out
    assert 'mmdet-pep image checkpoint -> vis model' in out
    ckpt = load_checkpoint_weights_only(dst, map_location='cpu')
    converted = ckpt['state_dict']
    model = MODELS.build(Config.fromfile(video_cfg).model)
    video = model.state_dict()
    # Every image key, as detector.<key>, with the video key's shape and
    # the image weights.
    assert list(converted) == ['detector.' + k for k in image]
    for key, value in image.items():
        assert converted['detector.' + key].shape == \
            video['detector.' + key].shape
        assert torch.equal(converted['detector.' + key], value)
    # Only the track head is left to its initialisation.
    track_head = {k for k in video if k.startswith('track_head.')}
    assert track_head and set(video) - set(converted) == track_head
    assert set(ckpt['meta']['absent']) == track_head
    assert ckpt['meta']['source'] == 'mmdet-pep image'
    assert ckpt['meta']['dataset_meta'] == dict(classes=CLASSES)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert unexpected == [] and set(missing) == track_head
    # As the Runner loads load_from (mmengine, strict=False, weights only).
    model = MODELS.build(Config.fromfile(video_cfg).model)
    load_checkpoint(model, dst, map_location='cpu', strict=False)
    key = 'detector.backbone.conv1.weight'
    assert torch.equal(model.state_dict()[key], image[key[9:]])


def test_wrong_sources_and_targets_fail_naming_them(tool, tmp_path, capsys):
    sipmask, sipmask_vis = (tiny(tmp_path, c, video) for c, video in zip(
        PAIRS['SipMask-VIS'], (False, True)))
    masktrack = tiny(tmp_path, PAIRS['MaskTrack-RCNN'][1], True)
    src, dst = str(tmp_path / 'image.pth'), str(tmp_path / 'vis.pth')
    image_checkpoint(sipmask, src)
    # SipMask's weights for MaskTrack R-CNN: its keys are not the model's.
    assert tool.main([src, dst, '--from-mmdet-pep-image', '--config',
                      masktrack]) == 1
    err = capsys.readouterr().err
    assert 'keys not in the model: detector.neck.fpn_convs.4.' in err
    assert 'detector.bbox_head.conv_cls.weight' in err
    assert 'keys of the model not in the checkpoint: ' in err
    assert 'detector.rpn_head.rpn_cls.weight' in err
    # An image config is no video model.
    assert tool.main([src, dst, '--from-mmdet-pep-image', '--config',
                      sipmask]) == 1
    assert 'give a video config' in capsys.readouterr().err
    assert not osp.exists(dst)
    # A video checkpoint is no image model's.
    assert tool.main([src, dst, '--from-mmdet-pep-image', '--config',
                      sipmask_vis]) == 0
    assert tool.main([dst, str(tmp_path / 'twice.pth'),
                      '--from-mmdet-pep-image', '--config',
                      sipmask_vis]) == 1
    assert 'keys of a video model' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args([src, dst, '--from-mmdet-pep-image'])
