"""tools/analysis_tools/pep_diagnose.py: node identities and grouping
statistics by hand, and a run on a tiny PEP."""
import json
import os.path as osp
from collections import Counter

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

from mmdet_pep.datasets.synthetic import generate_coco_split
from pep_testing import ROOT, load_tool
PEP_TINY = osp.join(ROOT, 'configs', 'pep', 'pep_r18_fpn_tiny_synthetic.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis_tools/pep_diagnose')


def square(y, x, side=4, size=12):
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[y:y + side, x:x + side] = True
    return mask


def test_node_identities_by_hand(tool):
    gts = torch.stack([square(0, 0), square(0, 6), square(6, 0)])
    gt_labels = torch.tensor([0, 0, 1])
    nodes = torch.stack([
        square(0, 0),  # GT 0 exactly
        square(0, 1),  # GT 0 at IoU 12 / 20 = 0.6
        square(0, 2),  # IoU 8 / 24 = 0.33 with both 0 and 1: none
        square(6, 0),  # GT 2's mask, but predicted class 0: none
        square(6, 6),  # background
    ])
    labels = torch.tensor([0, 0, 0, 0, 1])
    ids = tool.node_identities(nodes, labels, gts, gt_labels, 0.5)
    assert ids.tolist() == [0, 0, -1, -1, -1]
    assert tool.node_identities(nodes[:0], labels[:0], gts, gt_labels,
                                0.5).shape == (0, )


def test_key_statistics_by_hand(tool):
    gts = torch.stack([square(0, 0), square(0, 6), square(6, 0)])
    found = torch.tensor([True, False, False])  # GT 0 has an original

    def at(row, col):  # the [-1, 1] frame of the 12 x 12 grid
        return [(col + 0.5) / 12 * 2 - 1, (row + 0.5) / 12 * 2 - 1]

    keys = torch.tensor([
        at(1, 1),  # inside GT 0 (found)
        at(1, 7),  # inside GT 1 (missed)
        at(3, 9),  # GT 1 again
        at(10, 10),  # background
        [1.0, 1.0],  # the corner: the last pixel, background
    ])
    stats = tool.key_statistics(keys, gts, found)
    assert stats == dict(
        keys=5, missed_gts=2, keys_on_gt=3, keys_on_missed_gt=2,
        missed_gts_keyed=1)
    report = tool.summarize(stats)
    assert report['key_precision'] == pytest.approx(3 / 5)
    assert report['key_precision_missed'] == pytest.approx(2 / 5)
    assert report['key_recall_missed'] == pytest.approx(1 / 2)
    assert tool.key_statistics(keys[:0], gts, found) == dict(
        keys=0, missed_gts=2)


def test_displaced_statistics_by_hand(tool):
    # A 48 px padded input: a 12 x 12 mask grid (stride 4) and a 6 x 6
    # excavation map (8 px cells). GT 0 owns the cells of GTs 1 and 2.
    gts = torch.stack([square(0, 0), square(0, 6), square(6, 6)])
    flags = [
        dict(displaced=False, owners=[], centre=[8., 8.]),
        # Centre (12, 8): excavation cell (1, 1), GT 0's.
        dict(displaced=True, owners=[0], centre=[12., 8.]),
        # Centre (40, 40): cell (5, 5).
        dict(displaced=True, owners=[0], centre=[40., 40.]),
    ]
    found = torch.tensor([True, False, True])  # GT 2 found anyway
    mined_found = torch.tensor([False, True, False])

    def at(row, col):
        return [(col + 0.5) / 12 * 2 - 1, (row + 0.5) / 12 * 2 - 1]

    keys = torch.tensor([at(1, 7), at(7, 7), at(10, 1)])  # GT 1, 2, none
    excavated = torch.tensor([at(1, 1)])  # an original inside GT 0
    stats = tool.displaced_statistics(flags, gts, found, mined_found, keys,
                                      excavated, (6, 6), (48, 48))
    assert stats == dict(
        displaced_gts=2, displaced_found_by_originals=1,
        displaced_added_by_mining=1, keys_on_displaced=2, displaced_keyed=2,
        displaced_owner_excavated=2, displaced_shares_owner_exc_cell=1)
    report = tool.summarize(Counter(stats, gts=3, keys=3))
    assert report['displaced_fraction'] == pytest.approx(2 / 3)
    assert report['key_recall_displaced'] == 1.
    assert report['key_precision_displaced'] == pytest.approx(2 / 3)
    assert report['displaced_shares_owner_exc_cell'] == 0.5
    # No excavation around GT 0, no keys: nothing keyed or excavated.
    none = tool.displaced_statistics(flags, gts, found, mined_found,
                                     keys[:0], excavated[:0], (6, 6),
                                     (48, 48))
    assert none['displaced_keyed'] == 0
    assert none['displaced_owner_excavated'] == 0
    assert tool.displaced_statistics(flags[:1], gts[:1], found[:1],
                                     mined_found[:1], keys, excavated,
                                     (6, 6), (48, 48)) == dict(
                                         displaced_gts=0)


def test_group_statistics_by_hand(tool):
    # Nodes 0-5 of GTs 0, 0, 1, 1, -, 2; groups {0, 1, 2}, {3, 4}, {5}.
    identity = torch.tensor([0, 0, 1, 1, -1, 2])
    members = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0],
                            [0, 0, 0, 0, 0, 1]]).bool()
    stats = tool.group_statistics(members, identity)
    # Grouped pairs of matched nodes: (0,1) (0,2) (1,2) in group 0; none
    # in group 1 (node 4 unmatched). Same-GT pairs: (0,1) and (2,3).
    assert stats['grouped_pairs'] == 3
    assert stats['grouped_pairs_same_gt'] == 1
    assert stats['same_gt_pairs'] == 2
    assert stats['groups'] == 3
    assert stats['false_merges'] == 1  # group 0 holds GTs 0 and 1
    assert stats['split_gts'] == 1  # GT 1 in groups 0 and 1
    assert stats['gts_with_nodes'] == 3
    assert stats['unmatched_joining_matched'] == 1  # node 4 with node 3
    report = tool.summarize(Counter(stats, gts=4))
    assert report['pair_precision'] == pytest.approx(1 / 3)
    assert report['pair_recall'] == pytest.approx(1 / 2)
    assert report['false_merge_rate'] == pytest.approx(1 / 3)
    assert report['gt_recall_originals'] == 0  # no node counts here
    assert tool.summarize(Counter())['pair_precision'] is None


def test_diagnose_image_reads_the_heads_trace_and_patches_nothing(tool):
    from mmdet.registry import MODELS
    from pep_testing import fpn_feats, img_meta, make_gt, tiny_head_cfg
    torch.manual_seed(0)
    head = MODELS.build(tiny_head_cfg())
    head.init_weights()
    head.test_cfg = head._check_test_cfg({
        **head.test_cfg, 'score_thr': 0.,
        'excavate': dict(max_originals=10, key_thr=0., max_keys=2)
    })
    before = [dict(vars(m)) for m in (head, head.excavator, head.purifier)]
    gt = make_gt([[8, 8, 24, 24], [24, 8, 40, 24]], [0, 0])
    with torch.no_grad():
        outs = head(fpn_feats())
        stats = tool.diagnose_image(head, outs, 0, img_meta(), gt, 0.5)
    assert [dict(vars(m)) for m in (head, head.excavator,
                                     head.purifier)] == before
    assert stats['gts'] == 2 and stats['originals'] > 0
    assert stats['mined'] > 0 and stats['keys'] >= stats['mined']
    assert stats['groups'] > 0


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Val and test splits of two 64 px images and the untrained tiny
    PEP's checkpoint (seed 0)."""
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    root = tmp_path_factory.mktemp('tiny_pep')
    data_root = str(root / 'data') + '/'
    generate_coco_split(data_root, 'val', 2, image_size=64)
    generate_coco_split(data_root, 'test', 2, image_size=64, seed=2)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(PEP_TINY).model)
    model.init_weights()
    ckpt = str(root / 'pep.pth')
    save_checkpoint(dict(state_dict=weights_to_cpu(model.state_dict())),
                    ckpt)
    return data_root, ckpt


def test_runs_on_a_tiny_pep(tool, tiny, tmp_path):
    data_root, ckpt = tiny
    out = str(tmp_path / 'diag.json')
    # Low thresholds: the untrained model keeps candidates, mines keys and
    # its masks have pixels.
    report = tool.main([
        PEP_TINY, ckpt, '--out', out, '--cfg-options',
        f'test_dataloader.dataset.data_root={data_root}',
        'test_dataloader.dataset.ann_file=annotations/instances_val.json',
        'test_dataloader.dataset.data_prefix.img=val/',
        'model.test_cfg.score_thr=0.', 'model.test_cfg.excavate.key_thr=0.',
        'model.test_cfg.mask_thr=0.05'
    ])
    counts = report['counts']
    assert counts['gts'] > 0 and counts['originals'] > 0
    assert counts['mined'] > 0  # the excavator ran
    assert counts['keys'] >= counts['mined']  # before the score filter
    assert counts['keys_on_missed_gt'] <= counts['keys_on_gt'] <= \
        counts['keys']
    assert counts['groups'] > 0  # and the purifier
    # Displaced GTs are counted (the 64 px demo images have hardly any).
    assert 'displaced_fraction' in report
    assert counts['mined_false'] + counts.get('mined_redundant', 0) <= \
        counts['mined']
    assert osp.isfile(out)
    # --split val reads the val loader (here: the same tiny split).
    val = tool.main([
        PEP_TINY, ckpt, '--split', 'val', '--max-images', '1',
        '--cfg-options', f'val_dataloader.dataset.data_root={data_root}',
        'val_dataloader.dataset.ann_file=annotations/instances_val.json',
        'val_dataloader.dataset.data_prefix.img=val/',
        'model.test_cfg.score_thr=0.'
    ])
    assert 0 < val['counts']['gts'] < counts['gts']
    with pytest.raises(ValueError, match='not a PEP model'):
        tool.main([
            osp.join(ROOT, 'configs', 'embedmask',
                     'embedmask_r18_fpn_1200it_synthetic.py'), ckpt
        ])


def split_options(data_root):
    """``--cfg-options`` that test on the tiny test split and the val
    split of ``data_root``, every key pixel excavated."""
    return [
        f'test_dataloader.dataset.data_root={data_root}',
        'test_dataloader.dataset.ann_file=annotations/instances_test.json',
        'test_dataloader.dataset.data_prefix.img=test/',
        f'test_evaluator.ann_file={data_root}annotations/instances_test.json',
        f'val_dataloader.dataset.data_root={data_root}',
        f'val_evaluator.ann_file={data_root}annotations/instances_val.json',
        'model.test_cfg.excavate.key_thr=0.'
    ]


def test_same_weights_tests_every_setting_on_test_and_val(tiny, tmp_path):
    same = load_tool('analysis_tools/pep_same_weights')
    data_root, ckpt = tiny
    options = split_options(data_root) + ['model.test_cfg.score_thr=0.']
    out = tmp_path / 'same.json'
    # Two of the four settings run (each is two tests); all four build.
    report = same.main([
        PEP_TINY, ckpt, '--work-dir', str(tmp_path / 'work'), '--out',
        str(out), '--settings', 'PEP', 'baseline', '--cfg-options', *options
    ])
    assert list(report['settings']) == ['PEP', 'baseline']
    for setting in report['settings'].values():
        assert 'coco/segm_mAP' in setting['metrics']
        assert 'coco/segm_mAP' in setting['val_metrics']
    assert report['settings']['baseline']['cfg_options'] == {
        'model.mask_head.excavator': None,
        'model.mask_head.purifier': None
    }
    assert json.loads(out.read_text()) == report
    # The test and val splits differ: the configs point at each.
    test_cfg, val_cfg = same.setting_configs(
        Config.fromfile(PEP_TINY), ckpt, 'PEP', str(tmp_path / 'w'))
    assert test_cfg.test_dataloader.dataset.ann_file != \
        val_cfg.test_dataloader.dataset.ann_file
    assert test_cfg.load_from == val_cfg.load_from == ckpt
    no_pur, _ = same.setting_configs(
        Config.fromfile(PEP_TINY), ckpt, 'no-purifying', str(tmp_path / 'w'))
    assert no_pur.model.mask_head.purifier is None
    assert no_pur.model.mask_head.excavator is not None
    no_exc = Config.fromfile(PEP_TINY)
    no_exc.merge_from_dict({'model.mask_head.excavator': None})
    with pytest.raises(ValueError, match=r"no-excavating.*\['excavator'\]"):
        same.setting_configs(no_exc, ckpt, 'no-excavating', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        same.main([PEP_TINY, str(tmp_path / 'none.pth')])


def test_same_weights_tool_tests_named_settings(tiny, tmp_path):
    """tools/analysis_tools/same_weights.py: any model, settings by name
    and overrides; a stricter score threshold keeps fewer instances."""
    from mmdet_pep_tools.same_weights import parse_settings
    same = load_tool('analysis_tools/same_weights')
    data_root, ckpt = tiny
    options = split_options(data_root)
    report = same.main([
        PEP_TINY, ckpt, '--work-dir', str(tmp_path / 'work'), '--setting',
        'all', 'model.test_cfg.score_thr=0.', '--setting', 'none',
        'model.test_cfg.score_thr=1.', '--cfg-options', *options
    ])
    assert report['settings']['all']['cfg_options'] == {
        'model.test_cfg.score_thr': 0.}
    for split in ('metrics', 'val_metrics'):
        assert 'coco/segm_mAP' in report['settings']['all'][split]
    # No instance passes a score threshold of 1: the metric reports no
    # mask AP (nothing predicted) or 0, never above the other setting's.
    assert report['settings']['none']['metrics'].get(
        'coco/segm_mAP', 0.) <= max(
            report['settings']['all']['metrics']['coco/segm_mAP'], 0.)
    assert parse_settings([['as-is']]) == {'as-is': {}}
    with pytest.raises(ValueError, match='twice'):
        parse_settings([['a'], ['a', 'x=1']])
    with pytest.raises(ValueError, match='not KEY=VALUE'):
        parse_settings([['a', 'model']])
