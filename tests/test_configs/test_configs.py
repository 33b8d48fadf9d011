"""Every config loads, builds (with a tiny backbone) and runs a step."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def rel(path):
    return osp.relpath(path, ROOT)


def load(name):
    return Config.fromfile(osp.join(ROOT, name))


def tiny(model_cfg):
    """Swap the backbone for a narrow ResNet-18 with no weights to fetch."""
    cfg = copy.deepcopy(model_cfg)
    cfg.backbone = dict(type='ResNet',
                        depth=18,
                        base_channels=8,
                        num_stages=4,
                        out_indices=(0, 1, 2, 3),
                        norm_cfg=dict(type='BN'),
                        init_cfg=None)
    cfg.neck.in_channels = [8, 16, 32, 64]
    return cfg


def test_there_are_configs():
    names = {rel(p) for p in CONFIGS}
    for required in ('configs/pep/pep_r50_fpn_1x_coco.py',
                     'configs/pep/pep_r50_fpn_3x_coco.py',
                     'configs/pep/pep_r101_fpn_3x_coco.py',
                     'configs/pep/pep-baseline_r101_fpn_3x_coco.py',
                     'configs/pep/pep-excavate_r101_fpn_3x_coco.py',
                     'configs/pep/pep-purify_r101_fpn_3x_coco.py'):
        assert required in names


@pytest.mark.parametrize('path', CONFIGS, ids=rel)
def test_config_builds_and_steps(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    torch.manual_seed(0)
    model = MODELS.build(tiny(cfg.model))
    model.init_weights()
    packed = demo_mm_inputs(2, [(3, 64, 64), (3, 64, 64)],
                            num_items=[3, 1],
                            num_classes=len(
                                cfg.train_dataloader.dataset.get(
                                    'metainfo', {}).get('classes', range(3))),
                            with_mask=True)
    data = model.data_preprocessor(packed, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert len(preds) == 2 and 'masks' in preds[0].pred_instances
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'}


def test_paper_schedule_values():
    cfg = load('configs/pep/pep_r101_fpn_3x_coco.py')
    assert cfg.model.backbone.depth == 101
    assert cfg.train_cfg.max_epochs == 36
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.01,
                                                                  0.9, 1e-4)
    warmup, step = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and not warmup.by_epoch
    assert step.type == 'MultiStepLR' and step.milestones == [27, 33]
    assert step.gamma == 0.1
    assert cfg.auto_scale_lr.base_batch_size == 16
    resize = [t for t in cfg.train_pipeline if t.type == 'Resize'][0]
    assert resize.scale == (1333, 800) and resize.keep_ratio
    head = cfg.model.mask_head
    assert head.feat_channels == 256 and head.stacked_convs == 4
    assert head.mask_feature_head.out_channels == 256
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet101'
    for key in ('loss_excavate', 'loss_cls'):
        assert head.excavator[key].loss_weight == 1.0
    assert head.purifier.loss_graph.loss_weight == 1.0
    assert head.loss_mask.loss_weight == 1.0
    assert head.purifier.max_descriptors == 30


def _flatten(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


@pytest.mark.parametrize('setting',
                         ['r101_fpn_3x_coco', 'r18_fpn_1200it_synthetic'])
@pytest.mark.parametrize('variant,switched', [
    ('baseline', {'excavator', 'purifier'}),
    ('excavate', {'purifier'}),
    ('purify', {'excavator'}),
])
def test_ablation_configs_differ_only_in_switches(variant, switched, setting):
    full = load(f'configs/pep/pep_{setting}.py').to_dict()
    abl = load(f'configs/pep/pep-{variant}_{setting}.py').to_dict()
    for name in switched:
        assert abl['model']['mask_head'][name] is None
        full['model']['mask_head'].pop(name)
        abl['model']['mask_head'].pop(name)
    assert _flatten(full) == _flatten(abl)


def test_ce_mask_config_differs_only_in_the_mask_loss():
    dice = load('configs/pep/pep_r18_fpn_1200it_synthetic.py').to_dict()
    ce = load('configs/pep/pep_r18_fpn_ce-mask_1200it_synthetic.py').to_dict()
    assert dice['model']['mask_head'].pop('loss_mask')['type'] == 'DiceLoss'
    assert ce['model']['mask_head'].pop('loss_mask') == dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
    assert _flatten(dice) == _flatten(ce)
