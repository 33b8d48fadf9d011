"""tools/analysis_tools/profile_model.py: stage times of inference and a
training step, from forward hooks, the heads' public methods and the
profiler labels PEP's head sets itself; the model is left unchanged."""
import json
import os.path as osp

import pytest
import torch

from mmdet_pep.datasets.synthetic import generate_coco_split
from pep_testing import ROOT, load_tool
PEP_TINY = osp.join(ROOT, 'configs', 'pep', 'pep_r18_fpn_tiny_synthetic.py')
EMBEDMASK = osp.join(ROOT, 'configs', 'embedmask',
                     'embedmask_r18_fpn_1200it_synthetic.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis_tools/profile_model')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('profile')) + '/'
    generate_coco_split(root, 'train', 2, image_size=64)
    generate_coco_split(root, 'val', 2, image_size=64, seed=1)
    return root


def options(data_root, *extra):
    return ['--cfg-options'] + [
        f'{split}_dataloader.dataset.{key}'
        for split in ('train', 'test') for key in (
            f'data_root={data_root}',
            f'ann_file=annotations/instances_{"train" if split == "train" else "val"}.json',  # noqa: E501
            f'data_prefix.img={"train" if split == "train" else "val"}/')
    ] + ['train_dataloader.batch_size=2', *extra]


def run(tool, argv):
    threads = torch.get_num_threads()
    try:
        return tool.main(argv)
    finally:
        torch.set_num_threads(threads)


def test_pep_stages(tool, data_root, tmp_path):
    out = str(tmp_path / 'profile.json')
    # Score threshold 0: the untrained head keeps candidates, so every
    # post-processing stage runs.
    report = run(tool, [
        PEP_TINY, '--num-iters', '2', '--num-warmup', '1', '--threads', '1',
        '--out', out
    ] + options(data_root, 'model.test_cfg.score_thr=0.'))
    infer, train = report['infer']['stages'], report['train']['stages']
    for stage in ('backbone', 'neck', 'mask_head forward',
                  'head/perceiving towers', 'head/descriptor towers',
                  'head/general feature B', 'head/excavator feature',
                  'mask_head.predict_by_feat', 'PEPHead.select_originals',
                  'PEPHead.mine', 'PEPHead.add_mined', 'PEPHead.node_masks',
                  'PEPHead.group', 'PEPHead.purify', 'PEPHead.resize_masks',
                  'PEPHead.masks_to_boxes'):
        assert infer[stage]['ms'] > 0, stage
    for stage in ('backward', 'optimizer', 'PEPHead.targets',
                  'loss/perceiving', 'loss/mask', 'PEPHead.loss_graph',
                  'mask_head.loss_by_feat', 'PEPHead.excavate_train'):
        assert train[stage]['ms'] > 0, stage
    # One call per image; the towers run per level (2 convs + predictor).
    assert infer['backbone']['calls'] == 1
    assert infer['PEPHead.node_masks']['calls'] == 1
    assert infer['head/perceiving towers']['calls'] == 5 * 3
    assert train['PEPHead.targets']['calls'] == 1  # per batch
    # Stages nest in the step: none outlasts it, the top ones add up to
    # at most the step.
    for mode in ('infer', 'train'):
        wall = report[mode]['wall_ms']
        stages = report[mode]['stages']
        assert all(t['ms'] <= wall * 1.05 for t in stages.values())
    top = ('backbone', 'neck', 'mask_head forward',
           'mask_head.predict_by_feat')
    assert sum(infer[s]['ms'] for s in top) <= report['infer']['wall_ms']
    with open(out) as f:
        assert json.load(f)['infer']['stages'].keys() == infer.keys()


def test_model_is_left_unchanged(tool):
    from mmengine.config import Config
    cfg = Config.fromfile(PEP_TINY)
    model = tool.build(cfg)
    head = model.mask_head
    before = dict(vars(head))
    with tool.stages_marked(model):
        # Only the public methods of mmdet's head contract are wrapped.
        assert set(vars(head)) - set(before) == {
            'predict_by_feat', 'loss_by_feat'
        }
        assert head.cls_convs[0]._forward_hooks
    assert vars(head) == before
    assert 'predict' not in vars(head.excavator)
    assert 'loss' not in vars(head.purifier)
    assert not head.cls_convs[0]._forward_hooks
    assert not model.backbone._forward_pre_hooks


def test_other_methods_get_the_generic_stages(tool, data_root):
    report = run(tool, [
        EMBEDMASK, '--mode', 'infer', '--num-iters', '1', '--num-warmup',
        '0', '--threads', '1'
    ] + options(data_root))
    stages = report['infer']['stages']
    assert set(stages) == {
        'backbone', 'neck', 'bbox_head forward', 'bbox_head.predict_by_feat'
    }
    assert 'train' not in report
