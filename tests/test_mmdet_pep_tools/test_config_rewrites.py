"""mmdet_pep_tools.config_rewrites: the data-root, schedule-length and seed
rewrites of tools/demo.py and tools/analysis_tools/compare.py."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmdet_pep_tools.config_rewrites import (set_classes, set_data_root,
                                             set_image_scale, set_max_iters,
                                             set_seed)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC = {
    method: osp.join(ROOT, 'configs', method,
                     f'{method}_r18_fpn_1200it_synthetic.py')
    for method in ('pep', 'solov2', 'condinst')
}
SPLITS = ('train', 'val', 'test')


def load(path=SYNTHETIC['pep']):
    return Config.fromfile(path)


@pytest.mark.parametrize('method', sorted(SYNTHETIC))
def test_set_data_root_rewrites_every_loader_and_evaluator(method):
    cfg = load(SYNTHETIC[method])
    set_data_root(
        cfg,
        '/data/x/',
        ann_files=dict(train='a/train.json', val='a/val.json',
                       test='a/test.json'),
        img_prefixes=dict(train='imgs/tr/', val='imgs/va/', test='imgs/te/'))
    for split, short in zip(SPLITS, ('tr', 'va', 'te')):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.data_root == '/data/x/'
        assert dataset.ann_file == f'a/{split}.json'
        assert dataset.data_prefix == dict(img=f'imgs/{short}/')
    # Each evaluator reads its own split's annotations under the new root.
    assert cfg.val_evaluator.ann_file == '/data/x/a/val.json'
    assert cfg.test_evaluator.ann_file == '/data/x/a/test.json'
    # Nothing of the model is touched.
    assert cfg.model == load(SYNTHETIC[method]).model


def test_set_data_root_keeps_file_names_not_given():
    cfg = load()
    set_data_root(cfg, 'elsewhere/', ann_files=dict(train='t.json'))
    assert cfg.train_dataloader.dataset.ann_file == 't.json'
    assert cfg.train_dataloader.dataset.data_prefix == dict(img='train/')
    for split in ('val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.data_root == 'elsewhere/'
        assert dataset.ann_file == f'annotations/instances_{split}.json'
        assert dataset.data_prefix == dict(img=f'{split}/')
        assert cfg[f'{split}_evaluator'].ann_file == (
            f'elsewhere/annotations/instances_{split}.json')


def test_set_data_root_wrapped_dataset_and_evaluator_list():
    cfg = load()
    inner = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset', times=2, dataset=inner)
    cfg.val_evaluator = [
        cfg.val_evaluator,
        dict(type='DumpDetResults', out_file_path='x.pkl')
    ]
    set_data_root(cfg, 'r/', ann_files=dict(val='v.json'))
    assert cfg.train_dataloader.dataset.dataset.data_root == 'r/'
    assert 'data_root' not in cfg.train_dataloader.dataset
    coco, dump = cfg.val_evaluator
    assert coco.ann_file == 'r/v.json'
    assert 'ann_file' not in dump


def test_set_data_root_refuses_unknown_splits():
    with pytest.raises(ValueError, match='unknown splits'):
        set_data_root(load(), 'r/', ann_files=dict(training='t.json'))


@pytest.mark.parametrize('method', sorted(SYNTHETIC))
def test_set_max_iters_scales_the_schedule(method):
    # The synthetic recipe: 1200 iterations, warm-up 0-100, x0.1 at 960.
    cfg = load(SYNTHETIC[method])
    set_max_iters(cfg, 120)
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == 120
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0, 10)
    assert (steps.type, steps.begin, steps.end) == ('MultiStepLR', 0, 120)
    assert steps.milestones == [96]
    assert cfg.default_hooks.checkpoint.interval == 120
    assert cfg.default_hooks.logger.interval == 20


def test_set_max_iters_lengthens_and_keeps_the_shape():
    cfg = load()
    set_max_iters(cfg, 3000)
    warmup, steps = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 250)
    assert (steps.end, steps.milestones) == (3000, [2400])
    assert cfg.default_hooks.checkpoint.interval == 3000
    assert cfg.train_cfg.val_interval == 3000


def test_set_max_iters_very_short_run():
    cfg = load()
    set_max_iters(cfg, 2)
    warmup, steps = cfg.param_scheduler
    # round(100 / 600) = 0, but a scheduler must end after it begins.
    assert (warmup.begin, warmup.end) == (0, 1)
    assert (steps.end, steps.milestones) == (2, [2])
    # The run still logs, once per iteration.
    assert cfg.default_hooks.logger.interval == 2
    assert cfg.default_hooks.checkpoint.interval == 2


def test_set_max_iters_needs_an_iteration_loop():
    cfg = load(osp.join(ROOT, 'configs/pep/pep_r50_fpn_1x_coco.py'))
    with pytest.raises(ValueError, match='IterBasedTrainLoop'):
        set_max_iters(cfg, 100)
    with pytest.raises(ValueError, match='>= 1'):
        set_max_iters(load(), 0)


def test_set_seed():
    cfg = load()
    assert 'randomness' not in cfg
    set_seed(cfg, 7)
    assert cfg.randomness == dict(seed=7)
    set_seed(cfg, 8, deterministic=True)
    assert cfg.randomness == dict(seed=8, deterministic=True)
    # Other keys stay.
    set_seed(cfg, 9)
    assert cfg.randomness == dict(seed=9, deterministic=True)


def _num_classes_values(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes':
                yield value
            else:
                yield from _num_classes_values(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _num_classes_values(item)


@pytest.mark.parametrize('method', sorted(SYNTHETIC))
def test_set_classes_reaches_every_head_and_loader(method):
    cfg = load(SYNTHETIC[method])
    before = list(_num_classes_values(cfg.model.to_dict()))
    assert before and set(before) == {3}
    meta = dict(classes=('a', 'b', 'c', 'd'), palette=[(0, 0, 0)] * 4)
    set_classes(cfg, meta)
    after = list(_num_classes_values(cfg.model.to_dict()))
    assert after == [4] * len(before)
    for split in SPLITS:
        assert cfg[f'{split}_dataloader'].dataset.metainfo == meta
    # The built model predicts the four classes.
    if method == 'condinst':
        assert cfg.model.bbox_head.num_classes == 4
    else:
        assert cfg.model.mask_head.num_classes == 4


def test_set_classes_needs_num_classes():
    cfg = Config(dict(model=dict(type='X', backbone=dict(type='Y'))))
    with pytest.raises(ValueError, match='num_classes'):
        set_classes(cfg, dict(classes=('a', )))


def test_set_image_scale_changes_every_resize():
    cfg = load()
    set_image_scale(cfg, (144, 144))
    resizes = [
        t for split in SPLITS
        for t in cfg[f'{split}_dataloader'].dataset.pipeline
        if t.type == 'Resize'
    ]
    assert len(resizes) == 3
    assert all(t.scale == (144, 144) for t in resizes)
    assert all(t.keep_ratio for t in resizes)  # other keys kept


def test_set_image_scale_needs_a_resize():
    cfg = load()
    for split in SPLITS:
        dataset = cfg[f'{split}_dataloader'].dataset
        dataset.pipeline = [
            t for t in dataset.pipeline if t.type != 'Resize'
        ]
    with pytest.raises(ValueError, match='Resize'):
        set_image_scale(cfg, (64, 64))
