"""Every config loads, builds (with a tiny backbone) and runs a step."""
import ast
import copy
import glob
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import ParamSchedulerHook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

import mmdet
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs, demo_track_inputs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


SPATIALEMB = 'configs/spatial_embeddings/spatialemb_{}.py'
SIPMASK_VIS = 'configs/sipmask/sipmask-vis_{}.py'


def rel(path):
    return osp.relpath(path, ROOT)


def load(name):
    return Config.fromfile(osp.join(ROOT, name))


def tiny(model_cfg):
    """Swap the backbone for a narrow ResNet-18 with no weights to fetch
    (ERFNet's encoder, small and trained from scratch, stays)."""
    cfg = copy.deepcopy(model_cfg)
    if 'detector' in cfg:  # a video model: its image detector
        cfg.detector = tiny(cfg.detector)
        return cfg
    if cfg.backbone.type == 'ERFNetEncoder':
        return cfg
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
                     'configs/pep/pep_r101_fpn_3x_coco.py',
                     'configs/pep/pep-baseline_r101_fpn_3x_coco.py',
                     'configs/pep/pep-excavate_r101_fpn_3x_coco.py',
                     'configs/pep/pep-purify_r101_fpn_3x_coco.py',
                     'configs/solov2/solov2_r18_fpn_1200it_synthetic.py',
                     'configs/solov2/solov2_r101_fpn_3x_coco.py',
                     'configs/condinst/condinst_r18_fpn_1200it_synthetic.py',
                     'configs/condinst/condinst_r101_fpn_3x_coco.py',
                     'configs/embedmask/embedmask_r18_fpn_1200it_synthetic.py',
                     'configs/embedmask/'
                     'embedmask_r50-caffe_fpn_gn-head_1x_coco.py',
                     'configs/embedmask/'
                     'embedmask_r101-caffe_fpn_gn-head_ms-3x_coco.py',
                     'configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py',
                     'configs/sipmask/sipmask_r50-caffe_fpn_gn-head_1x_coco.py',
                     'configs/sipmask/'
                     'sipmask_r50-caffe_fpn_gn-head_ms-2x_coco.py',
                     'configs/sipmask/'
                     'sipmask_r101-caffe_fpn_gn-head_ms-4x_coco.py',
                     'configs/sipmask/'
                     'sipmask-pp_r101-caffe-dcn_fpn_ssd-544_6x_coco.py',
                     SPATIALEMB.format('r18_fpn_1200it_synthetic'),
                     SPATIALEMB.format('erfnet_crop512-200e_cityscapes-car'),
                     SPATIALEMB.format(
                         'erfnet_crop1024-ft20e_cityscapes-car'),
                     SPATIALEMB.format('erfnet_crop512-200e_cityscapes'),
                     SPATIALEMB.format('erfnet_crop1024-ft20e_cityscapes'),
                     SIPMASK_VIS.format('r18_fpn_1200it_synthetic-vis'),
                     SIPMASK_VIS.format(
                         'r50-caffe_fpn_gn-head_1x_youtubevis2019'),
                     SIPMASK_VIS.format(
                         'r50-caffe_fpn_gn-head_1x_youtubevis2021'),
                     SIPMASK_VIS.format(
                         'r50-caffe_fpn_gn-head_1x_youtubevis2019-local'),
                     'configs/masktrack_rcnn/'
                     'masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py'):
        assert required in names
    # One folder per method: nothing is left in the old comparison folder.
    assert not osp.exists(osp.join(ROOT, 'configs', 'comparison'))


@pytest.mark.parametrize('path', CONFIGS, ids=rel)
def test_config_builds_and_steps(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    torch.manual_seed(0)
    model = MODELS.build(tiny(cfg.model))
    model.init_weights()
    if 'detector' in cfg.model:
        step_video_model(cfg, model)
        return
    num_classes = len(
        cfg.train_dataloader.dataset.get('metainfo',
                                         {}).get('classes', range(3)))
    # mmdet's demo draws labels in [1, num_classes): give it 2 classes for
    # a one-class model and map its labels into range.
    packed = demo_mm_inputs(2, [(3, 64, 64), (3, 64, 64)],
                            num_items=[3, 1],
                            num_classes=max(num_classes, 2),
                            with_mask=True)
    for sample in packed['data_samples']:
        sample.gt_instances.labels %= num_classes
    data = model.data_preprocessor(packed, True)
    # parse_losses: as the runner sums them (Mask R-CNN's RPN gives a
    # list per level).
    loss, _ = model.parse_losses(
        model.loss(data['inputs'], data['data_samples']))
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert len(preds) == 2 and 'masks' in preds[0].pred_instances
    evaluators = cfg.val_evaluator
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators]
    assert set(evaluators[0].metric) == {'bbox', 'segm'}


def step_video_model(cfg, model):
    """One training step on clips of two frames (a key and a reference)
    and one prediction of a clip, with track ids, for a video config."""
    num_classes = len(cfg.train_dataloader.dataset.get(
        'metainfo', {}).get('classes', range(40)))
    packed = demo_track_inputs(
        batch_size=2, num_frames=2, key_frames_inds=[0],
        image_shapes=(3, 64, 64), num_items=[3, 1],
        num_classes=num_classes, with_mask=True)
    data = model.data_preprocessor(packed, True)
    loss, _ = model.parse_losses(
        model.loss(data['inputs'], data['data_samples']))
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    packed = demo_track_inputs(
        batch_size=1, num_frames=2, image_shapes=(3, 64, 64),
        num_items=[2], num_classes=num_classes, with_mask=True)
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        (clip, ) = model.predict(data['inputs'], data['data_samples'])
    assert all('instances_id' in f.pred_track_instances for f in clip)
    assert cfg.val_evaluator.metric == 'youtube_vis_ap'


def test_paper_schedule_values():
    cfg = load('configs/pep/pep_r101_fpn_3x_coco.py')
    assert cfg.model.backbone.depth == 101
    assert cfg.train_cfg.max_epochs == 36
    # The whole schedule, scheduler by scheduler, is checked (and stepped)
    # by test_3x_schedule_* below for every 3x config.
    assert cfg.param_scheduler == SCHEDULE_3X['param_scheduler']
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
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


# Training schedules ---------------------------------------------------------
#
# The expected values are the papers' and mmdet's words, not a run: the
# paper (§4.1) trains 36 epochs with SGD lr 0.01, momentum 0.9, weight decay
# 1e-4 and lr x0.1 at epochs 27 and 33 (16 images per batch), after mmdet's
# usual 500-iteration linear warm-up from lr x0.001. The 1x config takes
# mmdet's schedule_1x unchanged (12 epochs, lr x0.1 at 8 and 11; mmdet's
# lr 0.02 for 16 images) and only adds gradient clipping. The synthetic
# recipe is 1200 iterations of AdamW lr 1e-3, a 100-iteration warm-up from
# lr x0.01 and lr x0.1 at 80 % of training.
SCHEDULE_3X = dict(
    train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=36, val_interval=1),
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
             end=500),
        dict(type='MultiStepLR', begin=0, end=36, by_epoch=True,
             milestones=[27, 33], gamma=0.1),
    ],
    optim_wrapper=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                       weight_decay=1e-4),
        clip_grad=dict(max_norm=35, norm_type=2)),
    auto_scale_lr=dict(enable=False, base_batch_size=16))

SCHEDULE_1X = dict(
    train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1),
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
             end=500),
        dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
             milestones=[8, 11], gamma=0.1),
    ],
    optim_wrapper=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                       weight_decay=1e-4),
        clip_grad=dict(max_norm=35, norm_type=2)),
    auto_scale_lr=dict(enable=False, base_batch_size=16))

SCHEDULE_SYNTHETIC = dict(
    train_cfg=dict(type='IterBasedTrainLoop', max_iters=1200,
                   val_interval=1200),
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=100),
        dict(type='MultiStepLR', begin=0, end=1200, by_epoch=False,
             milestones=[960], gamma=0.1),
    ],
    optim_wrapper=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        clip_grad=dict(max_norm=35, norm_type=2)),
    auto_scale_lr=dict(enable=False, base_batch_size=8))

CONFIGS_3X = [p for p in CONFIGS if p.endswith('_3x_coco.py')]
CONFIGS_SYNTHETIC = [p for p in CONFIGS if p.endswith('_1200it_synthetic.py')]
# Iterations per epoch for stepping the epoch-based schedules: fewer than
# the 500 of the warm-up, so the warm-up spans epochs as it does on COCO
# (7330 iterations per epoch at 16 images) and an epoch-based warm-up or a
# warm-up reset per epoch would show.
EPOCH_LENGTH = 200


def _unscoped(value):
    """``value`` without the ``_scope_`` keys that ``mmdet::`` bases add."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


def schedule_of(cfg):
    """The whole training schedule of ``cfg``: loop, schedulers, optimizer
    and lr scaling, as plain data."""
    return {key: _unscoped(cfg.to_dict()[key]) for key in SCHEDULE_3X}


def lr_trace(cfg, epoch_length=EPOCH_LENGTH):
    """The learning rate of every training iteration under ``cfg``.

    Built and stepped as mmengine's Runner does it: the optimizer wrapper
    from ``optim_wrapper``, the schedulers from ``param_scheduler`` through
    the registry (with the Runner's ``epoch_length`` default argument), and
    ``ParamSchedulerHook`` stepping the iteration-based ones after every
    iteration and the epoch-based ones after every epoch.
    """
    model = torch.nn.Linear(1, 1)
    optim_wrapper = build_optim_wrapper(model,
                                        copy.deepcopy(cfg.optim_wrapper))
    schedulers = [
        PARAM_SCHEDULERS.build(
            copy.deepcopy(s),
            default_args=dict(optimizer=optim_wrapper,
                              epoch_length=epoch_length))
        for s in cfg.param_scheduler
    ]
    runner = SimpleNamespace(param_schedulers=schedulers)
    hook = ParamSchedulerHook()
    if cfg.train_cfg.type == 'EpochBasedTrainLoop':
        epochs, iters = cfg.train_cfg.max_epochs, epoch_length
    else:
        epochs, iters = 1, cfg.train_cfg.max_iters
    lrs = []
    for _ in range(epochs):
        for i in range(iters):
            lrs.append(optim_wrapper.get_lr()['lr'][0])
            optim_wrapper.optimizer.step()  # no gradient: a no-op
            hook.after_train_iter(runner, i)
        hook.after_train_epoch(runner)
    return lrs


def expected_lr(t, base_lr, start_factor, warmup_iters, milestones,
                epoch_length=None):
    """By hand: mmengine's LinearLR multiplies by ``start_factor`` at
    iteration 0 and rises linearly to x1 at iteration ``end - 1`` (its
    ``total_iters = end - begin - 1``); MultiStepLR multiplies by 0.1 once
    per milestone passed, counting epochs when ``epoch_length`` is given."""
    warm = start_factor + (1 - start_factor) * min(t, warmup_iters - 1) / (
        warmup_iters - 1)
    step = t // epoch_length if epoch_length else t
    return base_lr * warm * 0.1**sum(step >= m for m in milestones)


@pytest.mark.parametrize('path', CONFIGS_3X, ids=rel)
def test_3x_schedule_is_the_papers(path):
    cfg = Config.fromfile(path)
    assert schedule_of(cfg) == SCHEDULE_3X


@pytest.mark.parametrize('path', [
    'configs/pep/pep_r101_fpn_3x_coco.py',
    'configs/_base_/schedules/schedule_3x.py',
])
def test_3x_schedule_learning_rate_by_iteration(path):
    lrs = lr_trace(load(path))
    L = EPOCH_LENGTH
    assert len(lrs) == 36 * L
    # Warm-up: lr x0.001 at the first iteration, full lr at iteration 499.
    assert lrs[0] == pytest.approx(0.01 * 0.001)
    assert lrs[250] == pytest.approx(0.01 * (0.001 + 0.999 * 250 / 499))
    assert lrs[499] == pytest.approx(0.01)
    assert lrs[500] == pytest.approx(0.01)
    assert all(a < b for a, b in zip(lrs[:499], lrs[1:500]))
    # x0.1 when epoch 27 (0-based: after 27 epochs) and epoch 33 begin.
    assert lrs[27 * L - 1] == pytest.approx(0.01)
    assert lrs[27 * L] == pytest.approx(0.001)
    assert lrs[33 * L - 1] == pytest.approx(0.001)
    assert lrs[33 * L] == pytest.approx(0.0001)
    assert lrs[-1] == pytest.approx(0.0001)
    assert lrs == pytest.approx([
        expected_lr(t, 0.01, 0.001, 500, [27, 33], L)
        for t in range(36 * L)
    ], rel=1e-6)


def test_1x_schedule():
    cfg = load('configs/pep/pep_r50_fpn_1x_coco.py')
    assert schedule_of(cfg) == SCHEDULE_1X
    lrs = lr_trace(cfg)
    L = EPOCH_LENGTH
    assert len(lrs) == 12 * L
    assert lrs[0] == pytest.approx(0.02 * 0.001)
    assert lrs[499] == pytest.approx(0.02)
    assert lrs[8 * L - 1] == pytest.approx(0.02)
    assert lrs[8 * L] == pytest.approx(0.002)
    assert lrs[11 * L - 1] == pytest.approx(0.002)
    assert lrs[11 * L] == pytest.approx(0.0002)
    assert lrs == pytest.approx([
        expected_lr(t, 0.02, 0.001, 500, [8, 11], L) for t in range(12 * L)
    ], rel=1e-6)


@pytest.mark.parametrize('path', CONFIGS_SYNTHETIC, ids=rel)
def test_synthetic_schedule_is_the_recipe(path):
    cfg = Config.fromfile(path)
    assert schedule_of(cfg) == SCHEDULE_SYNTHETIC


def test_synthetic_schedule_learning_rate_by_iteration():
    lrs = lr_trace(load('configs/_base_/schedules/schedule_synthetic.py'))
    assert len(lrs) == 1200
    assert lrs[0] == pytest.approx(1e-3 * 0.01)
    assert lrs[50] == pytest.approx(1e-3 * (0.01 + 0.99 * 50 / 99))
    assert lrs[99] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:99], lrs[1:100]))
    # x0.1 at 80 % of the 1200 iterations: iteration 960.
    assert lrs[959] == pytest.approx(1e-3)
    assert lrs[960] == pytest.approx(1e-4)
    assert lrs[-1] == pytest.approx(1e-4)
    assert lrs == pytest.approx(
        [expected_lr(t, 1e-3, 0.01, 100, [960]) for t in range(1200)],
        rel=1e-6)


def _flatten(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


# PEP's configs ---------------------------------------------------------------
#
# configs/pep/ holds the recommended synthetic recipe (one flat file over
# configs/_base_/), its Tab. 2 rows, the tiny test config and the paper's
# COCO configs; the screens that chose the recipe are --cfg-options lines
# in docs/experiments/pep-screens.md.
PEP_DIR = osp.join(ROOT, 'configs', 'pep')
RECIPE = 'configs/pep/pep_r18_fpn_1200it_synthetic.py'
PEP_FILES = {
    'README.md', 'metafile.yml', 'pep_r18_fpn_1200it_synthetic.py',
    'pep-baseline_r18_fpn_1200it_synthetic.py',
    'pep-excavate_r18_fpn_1200it_synthetic.py',
    'pep-purify_r18_fpn_1200it_synthetic.py', 'pep_r18_fpn_tiny_synthetic.py',
    'pep_r101_fpn_3x_coco.py', 'pep-baseline_r101_fpn_3x_coco.py',
    'pep-excavate_r101_fpn_3x_coco.py', 'pep-purify_r101_fpn_3x_coco.py',
    'pep_r50_fpn_1x_coco.py'
}
TAB2_ROWS = {
    'baseline': {'excavator', 'purifier'},
    'excavate': {'purifier'},
    'purify': {'excavator'},
}


def _literal(node):
    """A literal, or ``dict(key=literal, ...)``, from its AST node."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    return ast.literal_eval(node)


def assignments(path):
    """The top-level ``name = value`` statements of a config file: what the
    file itself sets, before any inheritance (an expression that is not a
    literal stays an AST node)."""
    with open(osp.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), ast.dump(node)
        try:
            out[node.targets[0].id] = _literal(node.value)
        except ValueError:
            out[node.targets[0].id] = node.value
    return out


def test_pep_folder_holds_at_most_twelve_files():
    files = set(os.listdir(PEP_DIR))
    assert len(files) <= 12
    assert files == PEP_FILES


def test_recommended_recipe_is_one_flat_file():
    bases = assignments(RECIPE)['_base_']
    assert bases == [
        '../_base_/models/pep_r50_fpn.py',
        '../_base_/datasets/synthetic_instance.py',
        '../_base_/schedules/schedule_synthetic.py',
        '../_base_/synthetic_runtime.py'
    ]
    # The tiny test config is the recipe, shrunk.
    assert assignments('configs/pep/pep_r18_fpn_tiny_synthetic.py')[
        '_base_'] == './pep_r18_fpn_1200it_synthetic.py'


@pytest.mark.parametrize('setting',
                         ['r18_fpn_1200it_synthetic', 'r101_fpn_3x_coco'])
@pytest.mark.parametrize('row', sorted(TAB2_ROWS))
def test_tab2_rows_are_small_diffs_of_their_recipe(row, setting):
    """Each Tab. 2 row is its recipe with ``excavator=None`` and/or
    ``purifier=None``, written as such and nothing else."""
    switched = TAB2_ROWS[row]
    assert assignments(f'configs/pep/pep-{row}_{setting}.py') == dict(
        _base_=f'./pep_{setting}.py',
        model=dict(mask_head={name: None
                              for name in sorted(switched)}))
    full = load(f'configs/pep/pep_{setting}.py').to_dict()
    abl = load(f'configs/pep/pep-{row}_{setting}.py').to_dict()
    for name in switched:
        assert abl['model']['mask_head'][name] is None
        full['model']['mask_head'].pop(name)
        abl['model']['mask_head'].pop(name)
    assert _flatten(full) == _flatten(abl)


def test_recommended_recipe_settings():
    """The settings of the recommended recipe (configs/pep/README.md,
    "Departures from the paper"), pinned."""
    model = _unscoped(load(RECIPE).to_dict()['model'])
    assert model['backbone']['depth'] == 18
    assert model['backbone']['frozen_stages'] == -1
    assert model['backbone']['norm_eval'] is False
    assert model['backbone']['init_cfg'] is None
    assert model['neck']['in_channels'] == [64, 128, 256, 512]
    assert model['neck']['out_channels'] == 128
    head = model['mask_head']
    expected = dict(
        num_classes=3,
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)),
        pos_scale=0.2,
        num_grids=[24, 18, 12, 8, 6],
        rel_coords='quadratic',
        detach_excavation=True,
        detach_purifier=True,
        max_originals_train=16,
        loss_perceive=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=16.0),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True))
    assert {k: head[k] for k in expected} == expected
    assert head['mask_feature_head']['feat_channels'] == 64
    assert head['mask_feature_head']['out_channels'] == 128
    # The mechanisms as the paper's: every loss weight 1, <= 30 graph
    # nodes per image in training.
    assert head['excavator']['loss_excavate']['loss_weight'] == 1.0
    assert head['excavator']['loss_cls']['loss_weight'] == 1.0
    assert head['purifier']['loss_graph']['loss_weight'] == 1.0
    assert head['purifier']['max_descriptors'] == 30
    test_cfg = model['test_cfg']
    assert {k: v for k, v in test_cfg.items() if k != 'excavate'} == dict(
        nms_pre=200,
        score_thr=0.05,
        mask_thr=0.5,
        max_per_img=50,
        min_area=0,
        purify=dict(
            group_thr=0.5,
            class_agnostic=False,
            mask_iou_thr=0.5,
            rescore=True,
            matrix_nms=True),
        kernel='gaussian',
        sigma=2.0,
        filter_thr=0.05)
    assert test_cfg['excavate'] == dict(max_originals=30, key_thr=0.3,
                                        max_keys=4)


@pytest.mark.parametrize('path', sorted(
    rel(p) for p in CONFIGS
    if osp.basename(p).startswith('pep') and p.endswith('_coco.py')))
def test_pep_coco_configs_keep_the_papers_choices(path):
    """The COCO configs change none of the synthetic recipe's departures:
    no relative coordinates, trained end to end, every loss weight 1, the
    paper's CE mask loss, and the paper's purifying (the head's
    defaults)."""
    from mmdet_pep.models import PEPHead
    cfg = load(path)
    head = cfg.model.mask_head
    assert head.get('rel_coords') is None
    assert not head.get('detach_excavation', False)
    assert not head.get('detach_purifier', False)
    assert head.loss_perceive == dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    assert head.loss_mask == dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
    assert head.get('num_grids') == [40, 36, 24, 16, 12]
    purify = {
        **PEPHead.TEST_CFG_DEFAULTS['purify'],
        **cfg.model.test_cfg.get('purify', {})
    }
    assert purify == PEPHead.TEST_CFG_DEFAULTS['purify']
    assert (purify['mask_iou_thr'], purify['rescore'],
            purify['matrix_nms']) == (0.0, False, False)
    assert cfg.model.test_cfg.score_thr == 0.1


@pytest.mark.parametrize('path', sorted(
    rel(p) for p in CONFIGS if osp.basename(p).startswith('pep')))
def test_pep_area_filter_is_solov2s_on_coco_and_off_on_synthetic(path):
    """SOLOv2's ``area > stride`` filter drops whole ~10 x 10 px objects of
    the synthetic sets: the synthetic recipe keeps every non-empty mask,
    the COCO configs keep SOLOv2's filter."""
    min_area = load(path).model.test_cfg.get('min_area', 'stride')
    if 'synthetic' in path:
        assert min_area == 0
    else:
        assert min_area == 'stride'


# One house for all methods ---------------------------------------------------
#
# Every config combines a model base with one data base, one schedule base
# and the project's runtime base (configs/_base_/default_runtime.py, or
# synthetic_runtime.py on top of it). SOLOv2 and CondInst take mmdet's own
# model through configs/_base_/models/<method>_r50_fpn.py, which keeps only
# `model` of mmdet's config, and change only what the shared recipe needs:
# depth, widths, levels, grids and classes, never a head, loss or NMS.

MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
MMDET_MODELS = {
    'solov2': 'solov2/solov2_r50_fpn_1x_coco.py',
    'condinst': 'condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py',
}
HEAD_TYPES = {
    'solov2': dict(type='SOLOv2', mask_head='SOLOV2Head'),
    'condinst': dict(type='CondInst', bbox_head='CondInstBboxHead',
                     mask_head='CondInstMaskHead'),
}
OTHER_CONFIGS = [
    p for p in CONFIGS if rel(p).split(osp.sep)[1] in MMDET_MODELS
]
# What the synthetic recipe (128 px, ResNet-18 from scratch, 128-channel
# FPN and heads, 3 classes) and the R-101 setting may change of mmdet's
# model: dotted key prefixes.
SIZES_SYNTHETIC = (
    'backbone.depth', 'backbone.frozen_stages', 'backbone.norm_eval',
    'backbone.init_cfg', 'neck.in_channels', 'neck.out_channels',
    'mask_head.num_classes', 'mask_head.in_channels',
    'mask_head.feat_channels', 'mask_head.stacked_convs',
    'mask_head.scale_ranges', 'mask_head.num_grids', 'mask_head.norm_cfg',
    'mask_head.mask_feature_head.in_channels',
    'mask_head.mask_feature_head.feat_channels',
    'mask_head.mask_feature_head.out_channels',
    'mask_head.mask_feature_head.norm_cfg', 'bbox_head.num_classes',
    'bbox_head.in_channels', 'bbox_head.feat_channels',
    'bbox_head.stacked_convs', 'bbox_head.regress_ranges',
    'test_cfg.nms_pre', 'test_cfg.max_per_img')
SIZES_R101 = ('backbone.depth', 'backbone.init_cfg')


def method_of(path):
    return rel(path).split(osp.sep)[1]


def mmdet_model(method):
    return _unscoped(
        Config.fromfile(osp.join(MMDET_CONFIGS,
                                 MMDET_MODELS[method])).to_dict()['model'])


@pytest.mark.parametrize('path', CONFIGS, ids=rel)
def test_every_config_has_the_projects_runtime(path):
    cfg = Config.fromfile(path)
    # What `mim train mmdet CONFIG` (mmdet's own train.py) needs to find
    # the PEP model, data set, transforms and hooks.
    assert cfg.custom_imports == dict(
        imports=['mmdet_pep'], allow_failed_imports=False)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'SafeCheckpointHook', 'StrictNumClassCheckHook',
        'StrictCheckInvalidLossHook', 'RNGStateHook'
    ]


def test_model_bases_hold_only_the_model():
    pep = load('configs/_base_/models/pep_r50_fpn.py')
    assert set(pep.keys()) == {'model'} and pep.model.type == 'PEP'
    for method in MMDET_MODELS:
        cfg = load(f'configs/_base_/models/{method}_r50_fpn.py')
        assert set(cfg.keys()) == {'model'}
        # mmdet's model, unchanged.
        assert _unscoped(cfg.to_dict()['model']) == mmdet_model(method)


def test_synthetic_checkpoint_comes_at_the_end_of_the_schedule():
    runtime = load('configs/_base_/synthetic_runtime.py')
    schedule = load('configs/_base_/schedules/schedule_synthetic.py')
    checkpoint = runtime.default_hooks.checkpoint
    assert not checkpoint.by_epoch
    assert checkpoint.interval == schedule.max_iters
    assert not runtime.log_processor.by_epoch
    for path in CONFIGS:
        cfg = Config.fromfile(path)
        if cfg.train_cfg.type == 'IterBasedTrainLoop':
            assert (cfg.default_hooks.checkpoint.interval ==
                    cfg.train_cfg.max_iters), rel(path)


@pytest.mark.parametrize('path', OTHER_CONFIGS, ids=rel)
def test_other_methods_copy_no_head(path):
    method = method_of(path)
    with open(path) as f:
        text = f.read()
    # mmdet's head, losses and NMS come from mmdet's config, not a copy.
    for name in ('SOLOV2Head', 'CondInstBboxHead', 'CondInstMaskHead',
                 'loss_', '_delete_', 'nms=', 'kernel='):
        assert name not in text, name
    # The model base of the method, and no PEP config (whose model, data
    # and hooks would leak in).
    bases = next(
        ast.literal_eval(node.value) for node in ast.parse(text).body
        if isinstance(node, ast.Assign) and node.targets[0].id == '_base_')
    if isinstance(bases, str):
        # A settings variant (``*_mmdet-defaults_*``): a diff of the
        # method's synthetic config, which the check below covers.
        assert bases == f'./{method}_r18_fpn_1200it_synthetic.py', bases
    else:
        assert bases[0] == f'../_base_/models/{method}_r50_fpn.py'
        assert not any('pep' in base for base in bases)
    cfg = Config.fromfile(path)
    for key, head_type in HEAD_TYPES[method].items():
        assert (cfg.model.type if key == 'type' else
                cfg.model[key].type) == head_type
    assert 'excavator' not in cfg.model.mask_head


@pytest.mark.parametrize('path', OTHER_CONFIGS, ids=rel)
def test_other_methods_change_only_sizes(path):
    model = _flatten(_unscoped(Config.fromfile(path).to_dict()['model']))
    base = _flatten(mmdet_model(method_of(path)))
    changed = {
        k
        for k in set(model) | set(base)
        if model.get(k, '<absent>') != base.get(k, '<absent>')
    }
    allowed = SIZES_R101 if path.endswith('_3x_coco.py') else SIZES_SYNTHETIC
    assert {k for k in changed if not k.startswith(allowed)} == set()
    assert changed  # the R-50 COCO model is not used as it is


@pytest.mark.parametrize('setting',
                         ['r18_fpn_1200it_synthetic', 'r101_fpn_3x_coco'])
@pytest.mark.parametrize('method', sorted(MMDET_MODELS))
def test_other_methods_share_peps_recipe_and_sizes(method, setting):
    pep = load(f'configs/pep/pep_{setting}.py').to_dict()
    other = load(f'configs/{method}/{method}_{setting}.py').to_dict()
    pep_model, model = pep.pop('model'), other.pop('model')
    # Data, schedule, runtime and hooks: the same, key by key.
    assert _flatten(_unscoped(other)) == _flatten(_unscoped(pep))
    for key in ('depth', 'num_stages', 'out_indices', 'frozen_stages',
                'style', 'init_cfg'):
        assert model['backbone'][key] == pep_model['backbone'][key], key
    # mmdet's ResNet default, written out in PEP's model base.
    assert model['backbone'].get('norm_eval', True) == \
        pep_model['backbone']['norm_eval']
    assert model['neck']['in_channels'] == pep_model['neck']['in_channels']
    assert model['neck']['out_channels'] == pep_model['neck']['out_channels']
    if method == 'solov2':
        assert model['neck'] == _unscoped(pep_model['neck'])
    if not setting.endswith('_synthetic'):
        return  # on COCO each head keeps mmdet's own widths and test_cfg
    # The synthetic recipe's head widths, levels and grids, as PEP's.
    pep_head = pep_model['mask_head']
    if method == 'solov2':
        head = model['mask_head']
        for key in ('num_classes', 'in_channels', 'feat_channels',
                    'stacked_convs', 'strides', 'scale_ranges', 'pos_scale',
                    'num_grids', 'mask_feature_head', 'norm_cfg'):
            assert head[key] == pep_head[key], key
    else:
        head = model['bbox_head']
        for key in ('num_classes', 'in_channels', 'feat_channels',
                    'stacked_convs'):
            assert head[key] == pep_head[key], key
        mask_features = model['mask_head']['mask_feature_head']
        assert mask_features['in_channels'] == pep_head['in_channels']
        assert mask_features['feat_channels'] == \
            pep_head['mask_feature_head']['feat_channels']
    # Candidates and detections for 128 px images, as PEP's.
    for key in ('nms_pre', 'max_per_img'):
        assert model['test_cfg'][key] == pep_model['test_cfg'][key], key


# EmbedMask -------------------------------------------------------------------
#
# The official recipes (yinghdb/EmbedMask, `embed_mask_R50_1x` and
# `embed_mask_R101_ms_3x`): SGD lr 0.01 for 16 images, weight decay 1e-4,
# bias lr x2 without weight decay, a constant warm-up at lr / 3 for 500
# iterations, no gradient clipping; 90k iterations (12 epochs) with steps at
# 60k and 80k (epochs 8 and 11), or 270k (36 epochs) with steps at 210k and
# 250k (epochs 28 and 33) and a shorter side of 640 or 800.
EMBEDMASK = 'configs/embedmask/embedmask_{}.py'


def check_official_fcos_schedule(cfg, epochs, milestones):
    """The schedule of the official FCOS-based codes: SGD lr 0.01, bias lr
    x2 without decay, constant warm-up at lr / 3 for 500 iterations, no
    clipping, steps after ``milestones`` epochs. The batch (per GPU x the
    official GPU count) and ``auto_scale_lr``:
    test_official_gpu_count_and_total_batch."""
    assert cfg.train_cfg.max_epochs == epochs
    assert _unscoped(cfg.optim_wrapper.to_dict()) == dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
        paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
        clip_grad=None)
    lrs = lr_trace(cfg)
    L = EPOCH_LENGTH
    assert len(lrs) == epochs * L
    assert lrs[0] == pytest.approx(0.01 / 3)
    assert lrs[499] == pytest.approx(0.01 / 3)  # 500 iterations
    assert lrs[500] == pytest.approx(0.01)
    for k, m in enumerate(milestones):
        assert lrs[m * L - 1] == pytest.approx(0.01 * 0.1**k)
        assert lrs[m * L] == pytest.approx(0.01 * 0.1**(k + 1))


@pytest.mark.parametrize('setting,epochs,milestones', [
    ('r50-caffe_fpn_gn-head_1x_coco', 12, [8, 11]),
    ('r101-caffe_fpn_gn-head_ms-3x_coco', 36, [28, 33]),
])
def test_embedmask_coco_schedules_are_the_official(setting, epochs,
                                                    milestones):
    cfg = load(EMBEDMASK.format(setting))
    check_official_fcos_schedule(cfg, epochs, milestones)
    head = cfg.model.bbox_head
    assert head.type == 'EmbedMaskHead' and head.embed_dim == 16
    assert head.position_divisor == 100 and head.prior_margin == 2
    assert cfg.model.test_cfg.mask_thr == 0.53
    assert cfg.model.test_cfg.nms.iou_threshold == 0.6
    depth = 50 if setting.startswith('r50') else 101
    assert cfg.model.backbone.depth == depth
    assert cfg.model.backbone.init_cfg.checkpoint == (
        f'open-mmlab://detectron/resnet{depth}_caffe')


def test_embedmask_multi_scale_is_a_choice_of_two_sizes():
    cfg = load(EMBEDMASK.format('r101-caffe_fpn_gn-head_ms-3x_coco'))
    types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert 'Resize' not in types
    resize, = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'RandomChoiceResize'
    ]
    assert resize.scales == [(1333, 640), (1333, 800)] and resize.keep_ratio
    # Otherwise the pipeline of the single-scale configs (mmdet's COCO).
    single = load(EMBEDMASK.format('r50-caffe_fpn_gn-head_1x_coco'))
    assert [t.type for t in single.train_dataloader.dataset.pipeline] == [
        'Resize' if t == 'RandomChoiceResize' else t for t in types
    ]


def check_shares_peps_recipe_and_sizes(path):
    """Everything but the model is PEP's synthetic recipe; the model has
    PEP's backbone, neck and head sizes and CondInst's FCOS ranges for
    128 px images. Returns the model and PEP's, as dicts."""
    pep = load('configs/pep/pep_r18_fpn_1200it_synthetic.py').to_dict()
    other = load(path).to_dict()
    pep_model, model = pep.pop('model'), other.pop('model')
    assert _flatten(_unscoped(other)) == _flatten(_unscoped(pep))
    for key in ('depth', 'num_stages', 'out_indices', 'frozen_stages',
                'style', 'init_cfg', 'norm_cfg', 'norm_eval'):
        assert model['backbone'][key] == pep_model['backbone'].get(
            key, dict(type='BN', requires_grad=True)), key
    pre = dict(model['data_preprocessor'])
    assert pre == pep_model['data_preprocessor']
    for key in ('in_channels', 'out_channels'):
        assert model['neck'][key] == pep_model['neck'][key]
    head, pep_head = model['bbox_head'], pep_model['mask_head']
    for key in ('num_classes', 'in_channels', 'feat_channels',
                'stacked_convs'):
        assert head[key] == pep_head[key], key
    condinst = load('configs/condinst/condinst_r18_fpn_1200it_synthetic.py')
    assert head['regress_ranges'] == condinst.model.bbox_head.regress_ranges
    for key in ('nms_pre', 'max_per_img'):
        assert model['test_cfg'][key] == pep_model['test_cfg'][key], key
    return model, pep_model


def test_embedmask_synthetic_shares_peps_recipe_and_sizes():
    model, pep_model = check_shares_peps_recipe_and_sizes(
        EMBEDMASK.format('r18_fpn_1200it_synthetic'))
    head = model['bbox_head']
    assert head['num_mask_convs'] == pep_model['mask_head']['stacked_convs']
    # 2 units of 100 px at start on ~800 px COCO images; the same share of
    # a 128 px image.
    assert head['position_divisor'] == 100 * 128 / 800


# SipMask ---------------------------------------------------------------------
#
# The official recipes (JialeCao001/SipMask, SipMask-mmdetection):
# `sipmask_r50_caffe_fpn_gn_1x` (12 epochs, steps 8/11), `..._gn_ms_2x`
# (24 epochs, steps 20/23, shorter side in [640, 800]) and
# `sipmask_r101_caffe_fpn_gn_ms_4x` (48 epochs, steps 40/46); the same
# optimiser and warm-up as EmbedMask's.
SIPMASK = 'configs/sipmask/sipmask_{}.py'


@pytest.mark.parametrize('setting,epochs,milestones,depth', [
    ('r50-caffe_fpn_gn-head_1x_coco', 12, [8, 11], 50),
    ('r50-caffe_fpn_gn-head_ms-2x_coco', 24, [20, 23], 50),
    ('r101-caffe_fpn_gn-head_ms-4x_coco', 48, [40, 46], 101),
])
def test_sipmask_coco_configs_are_the_official(setting, epochs, milestones,
                                               depth):
    cfg = load(SIPMASK.format(setting))
    check_official_fcos_schedule(cfg, epochs, milestones)
    head = cfg.model.bbox_head
    assert head.type == 'SipMaskHead' and head.num_bases == 32
    assert head.basis_channels == 512 and head.basis_stride == 2
    assert head.stacked_convs == 4 and head.feat_channels == 256
    assert head.center_sampling and head.center_sample_radius == 1.5
    assert head.loss_bbox.type == 'IoULoss'
    assert head.loss_cls.type == 'FocalLoss' and head.loss_cls.alpha == 0.25
    assert head.norm_cfg == dict(type='GN', num_groups=32, requires_grad=True)
    assert cfg.model.test_cfg == dict(
        nms_pre=1000,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100,
        mask_thr=0.4)
    assert cfg.model.backbone.depth == depth
    assert cfg.model.backbone.init_cfg.checkpoint == (
        f'open-mmlab://detectron/resnet{depth}_caffe')
    # EmbedMask's backbone, neck and preprocessor (the official FCOS's).
    embedmask = load(EMBEDMASK.format('r50-caffe_fpn_gn-head_1x_coco'))
    for key in ('data_preprocessor', 'neck'):
        assert cfg.model[key] == embedmask.model[key]
    resizes = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if 'Resize' in t.type
    ]
    if 'ms' in setting:  # a range of shorter sides, not a choice
        assert [(t.type, t.scale) for t in resizes] == [
            ('RandomResize', [(1333, 640), (1333, 800)])
        ]
    else:
        assert [(t.type, t.scale) for t in resizes] == [('Resize',
                                                         (1333, 800))]


def test_sipmask_synthetic_shares_peps_recipe_and_sizes():
    model, _ = check_shares_peps_recipe_and_sizes(
        SIPMASK.format('r18_fpn_1200it_synthetic'))
    # The basis branch fuses 3 x 128 channels instead of 3 x 256.
    assert model['bbox_head']['basis_channels'] == 256
    assert model['bbox_head']['num_bases'] == 32


def test_sipmask_pp_real_time_config_is_the_official():
    """`sipmask++_r101_caffe_fpn_ssd_6x`: SSD augmentation at 576, test at
    544, the train set x3 for 24 epochs (steps 20/23), linear warm-up from
    lr / 3 over 500 iterations, 2-conv towers without norm, fast NMS, the
    rescoring branch and DCN on every third block of stages 2-4."""
    cfg = load('configs/sipmask/'
               'sipmask-pp_r101-caffe-dcn_fpn_ssd-544_6x_coco.py')
    head = cfg.model.bbox_head
    assert head.type == 'SipMaskPPHead'
    assert head.stacked_convs == 2 and head.norm_cfg is None
    backbone = cfg.model.backbone
    assert backbone.type == 'ResNetDCNInterval' and backbone.depth == 101
    assert backbone.dcn_interval == 3
    assert backbone.stage_with_dcn == (False, True, True, True)
    assert cfg.model.test_cfg.nms == dict(
        type='fast_nms', iou_threshold=0.5, top_k=200)
    assert cfg.model.test_cfg.score_thr == 0.1
    train = cfg.train_dataloader
    assert train.batch_size == 8
    assert train.dataset.type == 'RepeatDataset' and train.dataset.times == 3
    assert [t.type for t in train.dataset.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'PhotoMetricDistortion',
        'Expand', 'MinIoURandomCrop', 'Resize', 'RandomFlip', 'PackDetInputs'
    ]
    resize = train.dataset.dataset.pipeline[5]
    assert resize.scale == (576, 576) and not resize.keep_ratio
    test_resize, = [
        t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize'
    ]
    assert test_resize.scale == (544, 544) and not test_resize.keep_ratio
    assert cfg.optim_wrapper.clip_grad is None
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    assert cfg.train_cfg.max_epochs == 24
    lrs = lr_trace(cfg)
    L = EPOCH_LENGTH
    assert lrs[0] == pytest.approx(0.01 / 3)
    assert lrs[250] == pytest.approx(0.01 * (1 / 3 + 2 / 3 * 250 / 500))
    assert lrs[500] == pytest.approx(0.01)
    assert lrs[20 * L - 1] == pytest.approx(0.01)
    assert lrs[20 * L] == pytest.approx(0.001)
    assert lrs[23 * L] == pytest.approx(0.0001)


# SpatialEmbeddings -----------------------------------------------------------
#
# The released car model (davyneven/SpatialEmbeddings src/train_config.py,
# BranchedERFNet, my_loss.py, test.py) and its 1024 px fine-tune (issue #8).
CITYSCAPES_CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')


class CityscapesStandIn:
    """What a sampler reads of a data set, without Cityscapes' files: image
    i holds one object of class i."""

    def __init__(self, classes):
        self.metainfo = dict(classes=classes)

    def __len__(self):
        return len(self.metainfo['classes'])

    def get_data_info(self, index):
        return dict(instances=[dict(bbox_label=index, ignore_flag=0)])


def build_train_sampler(cfg):
    from mmdet.registry import DATA_SAMPLERS
    import mmdet_pep  # noqa: F401  (registers the samplers)
    dataset = CityscapesStandIn(cfg.train_dataloader.dataset.metainfo.classes)
    return DATA_SAMPLERS.build(cfg.train_dataloader.sampler,
                               default_args=dict(dataset=dataset, seed=0))


@pytest.mark.parametrize('classes', [('car', ), CITYSCAPES_CLASSES])
def test_spatialemb_cityscapes_recipe_is_the_official(classes):
    name = 'erfnet_crop512-200e_cityscapes' + ('-car' if len(classes) == 1
                                               else '')
    cfg = load(SPATIALEMB.format(name))
    model = cfg.model
    assert model.type == 'SpatialEmbeddings' and 'neck' not in model
    assert model.backbone.type == 'ERFNetEncoder'
    pre = model.data_preprocessor
    assert (pre.mean, pre.std, pre.bgr_to_rgb) == ([0.] * 3, [255.] * 3,
                                                   True)
    head = model.mask_head
    assert head.num_classes == len(classes) and head.n_sigma == 1
    assert head.grid_unit == 1024.
    loss = head.loss_mask
    assert (loss.instance_weight, loss.var_weight, loss.seed_weight,
            loss.foreground_weight) == (1., 10., 1., 10.)
    assert (model.test_cfg.seed_thr, model.test_cfg.min_pixels,
            model.test_cfg.fg_thr, model.test_cfg.mask_thr) == (0.9, 128,
                                                                0.5, 0.5)
    loader = cfg.train_dataloader
    assert loader.batch_size == 16
    dataset = loader.dataset
    assert dataset.type == 'CityscapesDataset'
    assert dataset.metainfo.classes == classes
    assert cfg.val_dataloader.dataset.metainfo.classes == classes
    assert [t.type for t in dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'RandomObjectCenteredCrop',
        'PackDetInputs'
    ]
    assert dataset.pipeline[2].crop_size == (512, 512)
    # The official 3000 crops an epoch, uniform over the objects: the
    # sampler counts the objects the crop chooses among (every class kept).
    assert loader.sampler == dict(type='ObjectUniformSampler',
                                  num_samples=3000)
    assert loader.sampler.get('classes') is None
    assert dataset.pipeline[2].get('classes') is None
    sampler = build_train_sampler(cfg)
    assert type(sampler).__name__ == 'ObjectUniformSampler'
    assert len(sampler) == 3000 and set(sampler) == set(range(len(classes)))
    assert cfg.optim_wrapper.optimizer == dict(
        type='Adam', lr=5e-4, weight_decay=1e-4)
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    # Poly lr (power 0.9) stepped per epoch: lr_e = 5e-4 (1 - e / 200)^0.9.
    lrs = lr_trace(cfg, epoch_length=1)
    assert len(lrs) == 200
    for epoch in (0, 1, 100, 199):
        assert lrs[epoch] == pytest.approx(5e-4 * (1 - epoch / 200)**0.9)


@pytest.mark.parametrize('suffix', ['-car', ''])
def test_spatialemb_finetune_resumes_the_220_epoch_poly_schedule(suffix):
    """Epochs 200-219 of the official 220-epoch poly schedule, on random
    1024 crops of full images, from stage 1's weights."""
    cfg = load(SPATIALEMB.format(f'erfnet_crop1024-ft20e_cityscapes{suffix}'))
    stage1 = load(SPATIALEMB.format(f'erfnet_crop512-200e_cityscapes{suffix}'))
    assert cfg.load_from.endswith(
        f'spatialemb_erfnet_crop512-200e_cityscapes{suffix}/epoch_200.pth')
    crop = cfg.train_dataloader.dataset.pipeline[2]
    assert crop.type == 'RandomCrop' and crop.crop_size == (1024, 1024)
    assert cfg.model == stage1.model
    lrs = lr_trace(cfg, epoch_length=1)
    assert len(lrs) == 20
    for epoch in range(20):
        assert lrs[epoch] == pytest.approx(
            5e-4 * (1 - (200 + epoch) / 220)**0.9)


def test_spatialemb_synthetic_shares_peps_recipe_and_sizes():
    pep = load('configs/pep/pep_r18_fpn_1200it_synthetic.py').to_dict()
    other = load(SPATIALEMB.format('r18_fpn_1200it_synthetic')).to_dict()
    pep_model, model = pep.pop('model'), other.pop('model')
    assert _flatten(_unscoped(other)) == _flatten(_unscoped(pep))
    for key in ('depth', 'num_stages', 'out_indices', 'frozen_stages',
                'style', 'init_cfg', 'norm_eval'):
        assert model['backbone'][key] == pep_model['backbone'][key], key
    # PEP pads masks in the preprocessor (SOLOv2's base); the
    # SpatialEmbeddings head, a BaseMaskHead, pads them itself.
    pep_pre = dict(pep_model['data_preprocessor'])
    assert pep_pre.pop('pad_mask')
    assert model['data_preprocessor'] == dict(
        pep_pre, type='DetDataPreprocessor')
    for key in ('in_channels', 'out_channels'):
        assert model['neck'][key] == pep_model['neck'][key]
    head = model['mask_head']
    assert head['num_classes'] == pep_model['mask_head']['num_classes']
    assert head['in_channels'] == pep_model['neck']['out_channels']
    assert model['test_cfg']['max_per_img'] == pep_model['test_cfg'][
        'max_per_img']


# SipMask-VIS -----------------------------------------------------------------
#
# The official SipMask-VIS/configs/sipmask/sipmask_r50_caffe_fpn_gn_1x.py.


# SipMask-VIS/mmdet/models/anchor_heads/sipmask_head.py:686-766 (fast NMS
# at IoU 0.5 and top_k 200 whatever the config's `nms`, masks > 0.5) and
# SipMask-VIS/configs/sipmask/sipmask_r50_caffe_fpn_gn_1x.py:51-56.
OFFICIAL_VIS_TEST = dict(
    nms_pre=200,
    score_thr=0.03,
    nms=dict(type='fast_nms', iou_threshold=0.5),
    max_per_img=10,
    mask_thr=0.5)


def test_sipmask_vis_youtube_vis_recipe_is_the_official():
    cfg = load(SIPMASK_VIS.format('r50-caffe_fpn_gn-head_1x_youtubevis2019'))
    model = cfg.model
    assert model.type == 'SipMaskVIS'
    head = model.detector.bbox_head
    assert head.num_classes == 40 and head.stacked_convs == 3
    assert model.track_head.num_convs == 2
    assert model.track_head.embed_channels == 512
    # The official test and memory (issue #42 item 2): fast NMS (top 200
    # per class by the head's default), masks > 0.5, tracks never
    # forgotten and keeping their first label.
    assert model.tracker == dict(
        type='SipMaskVISTracker',
        match_weights=dict(det_score=1.0, iou=2.0, det_label=10.0),
        num_frames_retain=None,
        label_memory='first')
    assert model.detector.test_cfg == OFFICIAL_VIS_TEST
    # Initialised from the COCO image model in this model's names (made by
    # tools/model_converters/sipmask_official_to_mmdet.py): a local file,
    # nothing downloaded, the backbone's ImageNet weights not fetched.
    assert cfg.load_from == (
        'checkpoints/sipmask_r50_caffe_fpn_gn_1x_coco_mmdet-pep_vis.pth')
    assert model.detector.backbone.init_cfg is None
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4)
    assert cfg.optim_wrapper.paramwise_cfg == dict(bias_lr_mult=2.,
                                                   bias_decay_mult=0.)
    assert cfg.train_cfg.max_epochs == 12
    loader = cfg.train_dataloader
    assert loader.batch_size == 8 and loader.sampler.type == 'TrackImgSampler'
    resize = loader.dataset.pipeline[1].transforms[2]
    assert resize.scale == (640, 360)
    assert cfg.val_evaluator.format_only
    # Linear warm-up from lr / 80 over 1000 iterations, x0.1 at 8 and 11.
    lrs = lr_trace(cfg, epoch_length=1000)
    assert lrs[0] == pytest.approx(0.005 / 80)
    assert lrs[500] == pytest.approx(0.005 * (1 / 80 + (1 - 1 / 80) / 2))
    assert lrs[1000] == pytest.approx(0.005)
    assert lrs[8 * 1000] == pytest.approx(0.0005)
    assert lrs[11 * 1000] == pytest.approx(0.00005)
    local = load(
        SIPMASK_VIS.format('r50-caffe_fpn_gn-head_1x_youtubevis2019-local'))
    assert not local.val_evaluator.format_only
    assert local.val_dataloader.dataset.ann_file.endswith('_train_val.json')
    assert local.train_dataloader.dataset.ann_file.endswith(
        '_train_sub.json')
    v2021 = load(SIPMASK_VIS.format('r50-caffe_fpn_gn-head_1x_youtubevis2021'))
    assert v2021.train_dataloader.dataset.dataset_version == '2021'
    assert v2021.val_dataloader.dataset.dataset_version == '2021'


def test_video_synthetic_configs_share_one_recipe():
    """SipMask-VIS and MaskTrack R-CNN on the synthetic clips: the same
    data, schedule and runtime; SipMask-VIS's detector is the synthetic
    image SipMask's model, tested as the official SipMask-VIS, with the
    official tracker memory."""
    sip = load(SIPMASK_VIS.format('r18_fpn_1200it_synthetic-vis')).to_dict()
    mt = load('configs/masktrack_rcnn/'
              'masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py').to_dict()
    sip_model, mt_model = sip.pop('model'), mt.pop('model')
    # Each starts from its own image model (issue #42 item 1).
    for cfg, image_config in (
            (sip, 'configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py'),
            (mt, 'configs/masktrack_rcnn/'
             'mask-rcnn_r18_fpn_1200it_synthetic.py')):
        init = cfg.pop('image_init')
        assert init['config'] == image_config and init['seed'] == 0
        assert cfg.pop('load_from').endswith('_seed0_vis.pth')
    assert _flatten(_unscoped(sip)) == _flatten(_unscoped(mt))
    image = load(SIPMASK.format('r18_fpn_1200it_synthetic')).to_dict()
    image_model = image['model']
    image_model.pop('data_preprocessor')
    image_model.pop('type')
    image_model.pop('test_cfg')
    detector = dict(sip_model['detector'])
    assert detector.pop('type') == 'SipMask'
    assert detector.pop('test_cfg') == OFFICIAL_VIS_TEST
    assert sip_model['tracker']['type'] == 'SipMaskVISTracker'
    assert sip_model['tracker']['num_frames_retain'] is None
    assert _flatten(_unscoped(detector)) == _flatten(_unscoped(image_model))
    for model in (sip_model, mt_model):
        assert model['data_preprocessor']['type'] == 'TrackDataPreprocessor'
        assert model['detector']['backbone']['depth'] == 18
        assert model['detector']['backbone']['init_cfg'] is None
        assert model['detector']['neck']['out_channels'] == 128
    assert sip_model['track_head']['num_convs'] == 1  # stacked_convs - 1


# GPU counts and total batch (issue #41 item 3) -------------------------------
#
# Per config: the official GPU count, total batch and lr. Each config puts
# total / GPUs images on a GPU, so that it reproduces the official batch and
# lr on the official GPU count, and sets auto_scale_lr.base_batch_size to the
# official total, so that mmdet's --auto-scale-lr gives the official lr
# whenever the total batch is the official one. Sources (the review:
# ../shared/notes/seed-ports-review-bff8828.md, S5 and P4):
# - SipMask (JialeCao001/SipMask @ bc63fa9): every training command uses 4
#   GPUs, README.md:71 (images) and README.md:132 (VIS); per GPU
#   `imgs_per_gpu` = 4 (sipmask_r50_caffe_fpn_gn_1x, _ms_2x), 2
#   (sipmask_r101_caffe_fpn_gn_ms_4x), 8 (sipmask++_r101_caffe_fpn_ssd_6x,
#   SipMask-VIS sipmask_r50_caffe_fpn_gn_1x), lr 0.01 (0.005 for VIS). No
#   config states a GPU count; the commands are the only source.
# - EmbedMask (yinghdb/EmbedMask): "on 4 GPUs with batchsize 16",
#   `--nproc_per_node=4 ... SOLVER.IMS_PER_BATCH 16`, README.md:62-70 (at
#   be2885b); `BASE_LR: 0.01` and `IMS_PER_BATCH: 16` (a total, as in
#   maskrcnn-benchmark) in configs/embed_mask/embed_mask_R50_1x.yaml:33,37
#   and embed_mask_R101_ms_3x.yaml:33,37 (at e9465cb, the ported version).
#   Since e9d6142 the README's command runs 2 GPUs with IMS_PER_BATCH 8
#   under the same sentence; the yaml's 16 is the one followed.
# - SpatialEmbeddings (davyneven/SpatialEmbeddings @ 39ea249): one process,
#   one DataLoader of 16 (the total) and DataParallel, src/train.py:39-40,
#   53; lr 5e-4 (src/train_config.py): 1 GPU-process in mmdet's terms.
OFFICIAL_BATCH = {
    'configs/sipmask/sipmask_r50-caffe_fpn_gn-head_1x_coco.py': (4, 16, 0.01),
    'configs/sipmask/sipmask_r50-caffe_fpn_gn-head_ms-2x_coco.py':
    (4, 16, 0.01),
    'configs/sipmask/sipmask_r101-caffe_fpn_gn-head_ms-4x_coco.py':
    (4, 8, 0.01),
    'configs/sipmask/sipmask-pp_r101-caffe-dcn_fpn_ssd-544_6x_coco.py':
    (4, 32, 0.01),
    'configs/sipmask/sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019.py':
    (4, 32, 0.005),
    'configs/sipmask/'
    'sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019-local.py':
    (4, 32, 0.005),
    'configs/sipmask/sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2021.py':
    (4, 32, 0.005),
    'configs/embedmask/embedmask_r50-caffe_fpn_gn-head_1x_coco.py':
    (4, 16, 0.01),
    'configs/embedmask/embedmask_r101-caffe_fpn_gn-head_ms-3x_coco.py':
    (4, 16, 0.01),
    SPATIALEMB.format('erfnet_crop512-200e_cityscapes-car'): (1, 16, 5e-4),
    SPATIALEMB.format('erfnet_crop512-200e_cityscapes'): (1, 16, 5e-4),
    SPATIALEMB.format('erfnet_crop1024-ft20e_cityscapes-car'):
    (1, 16, 5e-4 * (20 / 220)**0.9),  # stage 2 resumes the poly schedule
    SPATIALEMB.format('erfnet_crop1024-ft20e_cityscapes'):
    (1, 16, 5e-4 * (20 / 220)**0.9),
}


def test_official_batch_table_covers_the_seed_ports():
    names = {
        rel(p)
        for pattern in ('sipmask/*coco*.py', 'sipmask/*youtubevis*.py',
                        'embedmask/*coco*.py',
                        'spatial_embeddings/*cityscapes*.py')
        for p in glob.glob(osp.join(ROOT, 'configs', pattern))
    }
    assert names == set(OFFICIAL_BATCH)


def auto_scaled_lr(cfg, num_gpus, batch_size=None):
    """The lr after mmengine's ``Runner.scale_lr`` (what ``--auto-scale-lr``
    switches on) on ``num_gpus`` GPUs of ``batch_size`` (the config's by
    default): lr x num_gpus x batch_size / base_batch_size, applied to
    every parameter group (weight group first)."""
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg.train_dataloader)
    if batch_size is not None:
        loader.batch_size = batch_size
    optim_wrapper = build_optim_wrapper(torch.nn.Linear(1, 1),
                                        copy.deepcopy(cfg.optim_wrapper))
    runner = SimpleNamespace(_train_dataloader=loader,
                             world_size=num_gpus,
                             param_schedulers=None,
                             logger=SimpleNamespace(info=lambda msg: None))
    Runner.scale_lr(runner, optim_wrapper,
                    dict(cfg.auto_scale_lr, enable=True))
    return optim_wrapper.get_lr()['lr'][0]


@pytest.mark.parametrize('name', sorted(OFFICIAL_BATCH))
def test_official_gpu_count_and_total_batch(name):
    gpus, total, lr = OFFICIAL_BATCH[name]
    cfg = load(name)
    per_gpu = cfg.train_dataloader.batch_size
    assert per_gpu * gpus == total
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=total)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    # mmdet's rule on the official GPU count: the official lr.
    assert auto_scaled_lr(cfg, gpus) == pytest.approx(lr)
    # On other GPU counts: the official lr whenever the total is official,
    # linearly scaled otherwise.
    for other in (1, 2, 8):
        if total % other == 0:
            assert auto_scaled_lr(cfg, other, total // other) == (
                pytest.approx(lr))
        assert auto_scaled_lr(cfg, other) == pytest.approx(
            lr * other * per_gpu / total)


@pytest.mark.parametrize('suffix', ['-car', ''])
def test_spatialemb_stage2_sees_every_image(suffix):
    """Stage 1 draws crops centred on objects (images with objects only);
    the official stage 2 (`type='train'`) draws from every training image."""
    stage1 = load(SPATIALEMB.format(f'erfnet_crop512-200e_cityscapes{suffix}'))
    stage2 = load(
        SPATIALEMB.format(f'erfnet_crop1024-ft20e_cityscapes{suffix}'))
    assert stage1.train_dataloader.dataset.filter_cfg.filter_empty_gt
    assert not stage2.train_dataloader.dataset.filter_cfg.filter_empty_gt
    assert stage2.train_dataloader.dataset.filter_cfg.min_size == 0
    # Uniform over images, not stage 1's draw over objects.
    assert stage2.train_dataloader.sampler == dict(type='RandomSubsetSampler',
                                                   num_samples=3000)
    sampler = build_train_sampler(stage2)
    assert type(sampler).__name__ == 'RandomSubsetSampler'
    assert len(sampler) == 3000
