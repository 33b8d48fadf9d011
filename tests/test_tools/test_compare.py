"""tools/analysis_tools/compare.py end to end on a tiny set, and its parts
in mmdet_pep_tools; its multi-seed protocol (--seeds/--variants): result
files per run, skipping and resuming, the table rebuilt from the files."""
import contextlib
import io
import json
import os
import os.path as osp
import shutil

import pytest
import torch

from mmdet.registry import MODELS
from mmdet_pep.datasets.synthetic import (VARIANTS, generate_coco_split,
                                          generate_dataset)
from mmdet_pep_tools import comparison, protocol as protocol_lib, training
from mmdet_pep_tools.report import COLUMNS
from mmdet_pep_tools.results import load_latencies, load_results, summarize
from pep_testing import ROOT, load_tool
PEP_CONFIG = osp.join(ROOT, 'configs/pep/pep_r18_fpn_1200it_synthetic.py')
SOLOV2_CONFIG = osp.join(ROOT,
                         'configs/solov2/solov2_r18_fpn_1200it_synthetic.py')
MAX_ITERS = 3
STEP_WARMUP = 1
NUM_IMAGES = 6  # more than the 4 test images: the loader starts over

# Narrow versions of the synthetic configs: ResNet-18 with 8 base channels
# (stages of 8/16/32/64), a 16-channel FPN and head with GN groups of 4,
# 64 px images, batch 2 and no worker processes.
TINY = """
_base_ = {base!r}
gn = dict(type='GN', num_groups=4, requires_grad=True)
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    mask_head=dict(
        in_channels=16,
        feat_channels=16,
        num_grids=[12, 10, 8, 6, 4],
        mask_feature_head=dict(
            feat_channels=16, out_channels=16, norm_cfg=gn),
        norm_cfg=gn,{head_extra}),
    # Untrained scores stay near the prior: keep every candidate.
    test_cfg=dict(nms_pre=50, score_thr=0., max_per_img=20{test_extra}))
image_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
"""
PEP_EXTRA = dict(
    head_extra="""
        excavator=dict(feat_channels=8, hidden_channels=8, norm_cfg=gn),
        purifier=dict(embed_channels=16)""",
    test_extra=', excavate=dict(max_originals=10)')

MODEL_KEYS = {
    'name', 'config', 'checkpoint', 'trained_iters', 'metrics',
    'bbox_mAP', 'segm_mAP', 'params', 'flops', 'flops_input_shape', 'latency',
    'floor_latency', 'head_overhead_ms', 'train_step', 'train_batch_size',
    'train_device', 'peak_memory', 'notes'
}
LATENCY_KEYS = {
    'num_calls', 'images_per_call', 'median_ms', 'mean_ms', 'std_ms', 'p10_ms',
    'p25_ms', 'p75_ms', 'p90_ms', 'min_ms', 'max_ms', 'fps', 'num_warmup',
    'latencies_ms'
}


@pytest.fixture(scope='module')
def compare():
    return load_tool('analysis_tools/compare')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Data (6 train / 4 val images, 64 px) and the two tiny configs."""
    root = tmp_path_factory.mktemp('compare')
    data_root = str(root / 'data') + '/'
    generate_coco_split(data_root, 'train', 6, image_size=64, seed=0)
    generate_coco_split(data_root, 'val', 4, image_size=64, seed=1)
    generate_coco_split(data_root, 'test', 4, image_size=64, seed=2)
    configs = {}
    for name, base, extra in (('PEP', PEP_CONFIG, PEP_EXTRA),
                              ('SOLOv2', SOLOV2_CONFIG,
                               dict(head_extra='', test_extra=''))):
        path = root / f'{name.lower()}_tiny.py'
        path.write_text(TINY.format(base=base, **extra))
        configs[name] = str(path)
    return dict(root=root, data_root=data_root, configs=configs)


def _run(compare, argv):
    """``compare.main`` with its stdout, restoring torch's thread count."""
    threads = torch.get_num_threads()
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            report = compare.main(argv)
    finally:
        torch.set_num_threads(threads)
    return report, stdout.getvalue()


@pytest.fixture(scope='module')
def run(compare, tiny):
    """One comparison of the tiny PEP and SOLOv2, trained from scratch."""
    work_dir = str(tiny['root'] / 'work')
    report, stdout = _run(compare, [
        f'PEP={tiny["configs"]["PEP"]}', f'SOLOv2={tiny["configs"]["SOLOv2"]}',
        '--work-dir', work_dir, '--data-root', tiny['data_root'],
        '--max-iters',
        str(MAX_ITERS), '--step-warmup',
        str(STEP_WARMUP), '--device', 'cpu', '--threads', '1', '--num-images',
        str(NUM_IMAGES), '--num-warmup', '1', '--flops-images', '1',
        '--latency-dir', osp.join(work_dir, 'latency')
    ])
    return dict(report=report, stdout=stdout, work_dir=work_dir)


def _table_rows(text):
    return [line for line in text.splitlines() if line.startswith('|')]


def _cells(row):
    return [c.strip() for c in row.strip('|').split('|')]


def test_markdown_table(run, compare):
    path = osp.join(run['work_dir'], 'comparison.md')
    with open(path) as f:
        text = f.read()
    header, separator, *rows = _table_rows(text)
    assert _cells(header) == list(COLUMNS)
    assert all(set(c) <= set(':-') and c for c in _cells(separator))
    assert len(_cells(separator)) == len(COLUMNS)
    assert [_cells(r)[0] for r in rows] == ['PEP', 'SOLOv2']
    assert all(len(_cells(r)) == len(COLUMNS) for r in rows)
    # The table in the file is the one printed.
    assert _table_rows(run['stdout']) == _table_rows(text)
    for row, model in zip(rows, run['report']['models']):
        cells = dict(zip(COLUMNS, _cells(row)))
        assert cells['Latency (ms)'].startswith(
            f'{model["latency"]["median_ms"]:.1f} (')
        assert cells['Params (M)'] == f'{model["params"] / 1e6:.2f}'


def test_json_report(run):
    with open(osp.join(run['work_dir'], 'comparison.json')) as f:
        report = json.load(f)
    settings = report['settings']
    assert settings['device'] == 'cpu' and settings['threads'] == 1
    assert settings['num_images'] == NUM_IMAGES
    assert [m['name'] for m in report['models']] == ['PEP', 'SOLOv2']
    for model in report['models']:
        assert set(model) == MODEL_KEYS
        assert model['trained_iters'] == MAX_ITERS
        assert osp.isfile(model['checkpoint'])
        assert osp.dirname(model['checkpoint']) == osp.join(
            run['work_dir'], model['name'])
        assert model['params'] > 0
        for key in ('latency', 'floor_latency'):
            stats = model[key]
            assert set(stats) == LATENCY_KEYS
            assert stats['num_calls'] == NUM_IMAGES
            assert stats['num_warmup'] == 1
            assert stats['p10_ms'] <= stats['median_ms'] <= stats['p90_ms']
        assert model['head_overhead_ms'] == pytest.approx(
            model['latency']['median_ms'] -
            model['floor_latency']['median_ms'])
        assert model['train_step']['num_calls'] == MAX_ITERS - STEP_WARMUP
        assert model['train_step']['median_ms'] > 0
        assert model['train_batch_size'] == 2
        assert model['train_device'] == 'cpu'
        for phase in ('inference', 'train'):
            assert model['peak_memory'][phase]['peak_mb'] >= 0
        # A number, or n/a with the reason.
        if model['flops'] is None:
            assert model['notes']['flops']
        else:
            assert model['flops'] > 0
            assert model['flops_input_shape'] == [64, 64]
        for key in ('bbox_mAP', 'segm_mAP'):
            if model[key] is None:
                assert model['notes'][key]
            else:
                assert 0. <= model[key] <= 1.
                assert model[key] == model['metrics'][f'coco/{key}']
    # Only PEP has an excavator and a purifier.
    pep, solo = report['models']
    assert pep['params'] != solo['params']
    # The tiny PEP keeps candidates down to score 0: it is evaluated.
    assert pep['segm_mAP'] is not None


def test_latency_files(run):
    latencies = load_latencies(osp.join(run['work_dir'], 'latency'))
    assert sorted(latencies) == ['PEP', 'SOLOv2']
    for model in run['report']['models']:
        lat = latencies[model['name']]
        assert lat['latency']['median_ms'] == model['latency']['median_ms']
        assert 'latencies_ms' not in lat['latency']
        assert lat['floor_ms'] == model['floor_latency']['median_ms']
        assert lat['device'] == 'cpu' and lat['threads'] == 1
        assert lat['code_commit'] and lat['model_digest']
    assert latencies['PEP']['model_digest'] != latencies['SOLOv2'][
        'model_digest']


def test_png(run):
    path = osp.join(run['work_dir'], 'comparison.png')
    with open(path, 'rb') as f:
        head = f.read(8)
    assert head == b'\x89PNG\r\n\x1a\n'
    assert osp.getsize(path) > 1000


def test_eval_only_reproduces_the_metrics(run, compare, tiny):
    pep = run['report']['models'][0]
    report, _ = _run(compare, [
        f'PEP={tiny["configs"]["PEP"]}', '--checkpoints', pep['checkpoint'],
        '--eval-only', '--work-dir',
        str(tiny['root'] / 'eval_only'), '--data-root', tiny['data_root'],
        '--device', 'cpu', '--threads', '1', '--num-images', '2',
        '--num-warmup', '0', '--flops-images', '1'
    ])
    (model, ) = report['models']
    assert model['checkpoint'] == pep['checkpoint']
    assert model['trained_iters'] is None
    assert model['metrics'] == pep['metrics']
    assert model['train_step'] is None
    assert model['peak_memory']['train'] is None
    assert model['train_device'] is None
    assert 'eval-only' in model['notes']['train_step']
    with open(str(tiny['root'] / 'eval_only' / 'comparison.md')) as f:
        (row, ) = _table_rows(f.read())[2:]
    assert _cells(row)[COLUMNS.index('Train step (ms)')] == 'n/a'


def test_default_models_and_ablations(compare, tiny):
    specs = compare.build_specs(compare.parse_args([]))
    assert [s.name for s in specs] == [
        'PEP', 'PEP-baseline', 'PEP-excavate', 'PEP-purify', 'SOLOv2',
        'SOLOv2-mmdet', 'CondInst', 'CondInst-mmdet', 'EmbedMask', 'SipMask',
        'SpatialEmbeddings'
    ]
    # Every model, ablations and the peers' mmdet-default settings
    # included, is a config file of its method's folder.
    assert [osp.relpath(osp.dirname(s.config), ROOT) for s in specs] == [
        osp.join('configs', folder)
        for folder in ['pep'] * 4 + ['solov2'] * 2 + ['condinst'] * 2 +
        ['embedmask', 'sipmask', 'spatial_embeddings']
    ]
    assert all(osp.isfile(s.config) for s in specs)

    # --ablations adds the Tab. 2 configs next to a PEP config, and none to
    # other models.
    args = compare.parse_args([
        f'P={PEP_CONFIG}', SOLOV2_CONFIG, '--ablations', '--data-root',
        tiny['data_root']
    ])
    specs = compare.build_specs(args)
    assert [s.name for s in specs] == [
        'P', 'P-baseline', 'P-excavate', 'P-purify',
        'solov2_r18_fpn_1200it_synthetic'
    ]
    assert [s.config for s in specs[1:4]] == [
        osp.join(ROOT, 'configs', 'pep',
                 f'pep-{row}_r18_fpn_1200it_synthetic.py')
        for row in ('baseline', 'excavate', 'purify')
    ]
    switched_on = {}
    for spec in specs[:4]:
        cfg = comparison.load_cfg(spec, args)
        assert cfg.work_dir == osp.join(args.work_dir, spec.name)
        assert cfg.experiment_name == spec.name
        assert cfg.test_dataloader.dataset.data_root == tiny['data_root']
        assert cfg.test_evaluator.ann_file == osp.join(
            tiny['data_root'], 'annotations/instances_test.json')
        head = MODELS.build(cfg.model).mask_head
        switched_on[spec.name] = (head.excavator is not None, head.purifier
                                  is not None)
    assert switched_on == {
        'P': (True, True),
        'P-baseline': (False, False),
        'P-excavate': (True, False),
        'P-purify': (False, True)
    }
    # A PEP config without ablation configs next to it.
    with pytest.raises(ValueError, match='ablation config'):
        compare.build_specs(
            compare.parse_args([tiny['configs']['PEP'], '--ablations']))


def test_checkpoint_assignment(compare, tiny):
    pep = f'PEP={tiny["configs"]["PEP"]}'
    solo = f'SOLOv2={tiny["configs"]["SOLOv2"]}'

    def specs(*argv):
        return compare.build_specs(compare.parse_args([pep, solo, *argv]))

    assert [s.checkpoint for s in specs('--checkpoints', 'a.pth', 'b.pth')
            ] == ['a.pth', 'b.pth']
    assert [s.checkpoint for s in specs('--checkpoints', 'SOLOv2=b.pth')
            ] == [None, 'b.pth']
    for bad in (['--checkpoints', 'a.pth'], ['--checkpoints', 'X=a.pth'],
                ['--checkpoints', 'PEP=a.pth',
                 'b.pth'], ['--checkpoints', 'SOLOv2=b.pth', '--eval-only']):
        with pytest.raises(ValueError):
            specs(*bad)


def test_load_cfg_applies_the_shared_rewrites(compare, tiny):
    """--data-root, --max-iters and --seed through mmdet_pep_tools
    (their own tests are in tests/test_mmdet_pep_tools/
    test_config_rewrites.py)."""
    args = compare.parse_args([
        PEP_CONFIG, '--data-root', tiny['data_root'], '--max-iters', '120',
        '--seed', '3'
    ])
    (spec, ) = compare.build_specs(args)
    cfg = comparison.load_cfg(spec, args)
    for split in ('train', 'val', 'test'):
        assert cfg[f'{split}_dataloader'].dataset.data_root == \
            tiny['data_root']
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == 120
    warmup, steps = cfg.param_scheduler
    assert (warmup.end, steps.end, steps.milestones) == (10, 120, [96])
    assert cfg.default_hooks.checkpoint.interval == 120
    assert cfg.randomness.seed == 3
    # Without --seed, mmengine draws one per run.
    (spec, ) = compare.build_specs(compare.parse_args([PEP_CONFIG]))
    assert 'randomness' not in comparison.load_cfg(
        spec, compare.parse_args([PEP_CONFIG]))


def test_time_models_round_robin(compare, monkeypatch):
    """Every timed image runs all models in turn, each on its own loader."""
    calls = []

    def fake_step(model, part):
        return lambda data: calls.append((model, part, data))

    monkeypatch.setattr(comparison, 'inference_step', fake_step)
    monkeypatch.setattr(comparison, 'batch1_loader',
                        lambda cfg: [f'{cfg}-img{i}' for i in range(2)])
    entries = [dict(name='A'), dict(name='B')]
    args = compare.parse_args(['--num-images', '3', '--num-warmup', '1'])
    comparison.time_models(entries, ['mA', 'mB'], ['a', 'b'], args,
                        torch.device('cpu'))
    # 1 warm-up + 3 timed rounds; the loaders (2 images) start over.
    rounds = [calls[i:i + 4] for i in range(0, len(calls), 4)]
    assert len(rounds) == 4
    for i, round_calls in enumerate(rounds):
        assert round_calls == [('mA', 'full', f'a-img{i % 2}'),
                               ('mA', 'floor', f'a-img{i % 2}'),
                               ('mB', 'full', f'b-img{i % 2}'),
                               ('mB', 'floor', f'b-img{i % 2}')]
    for entry in entries:
        assert entry['latency']['num_calls'] == 3
        assert entry['floor_latency']['num_warmup'] == 1
        assert entry['head_overhead_ms'] == pytest.approx(
            entry['latency']['median_ms'] -
            entry['floor_latency']['median_ms'])


# --- the multi-seed protocol ---

COMMIT = 'c0ffee' * 6 + 'abcd'


@pytest.fixture(scope='module')
def protocol(compare, tmp_path_factory):
    """The tiny SOLOv2 trained for 2 iterations with seeds 0 and 1 on tiny
    copies of both data variants."""
    root = tmp_path_factory.mktemp('protocol')
    data_dir = root / 'data'
    generate_dataset(str(data_dir / 'synthetic'), num_train=4, num_val=3,
                     num_test=3, image_size=64, seed=0)
    generate_dataset(str(data_dir / 'synthetic_dense'), num_train=4,
                     num_val=3, num_test=3, seed=0, **VARIANTS['dense'])
    config = root / 'solov2_tiny.py'
    # After 2 iterations no mask clears 0.5 and no score survives Matrix
    # NMS's 0.05: keep every pixel and score, so that there is something
    # to evaluate.
    config.write_text(TINY.format(base=SOLOV2_CONFIG, head_extra='',
                                  test_extra=', mask_thr=0., filter_thr=0.'))
    argv = [
        f'SOLO={config}', '--seeds', '0', '1', '--variants', 'demo', 'dense',
        '--data-dir',
        str(data_dir), '--results-dir',
        str(root / 'results'), '--work-dir',
        str(root / 'work'), '--max-iters', '2', '--step-warmup', '0',
        '--threads', '1'
    ]
    # The tests must not depend on whether this checkout has uncommitted
    # changes: the code commit is fixed.
    mp = pytest.MonkeyPatch()
    mp.setattr(protocol_lib, 'code_commit', lambda files, root: COMMIT)
    mp.setattr(training, 'code_commit', lambda files, root: COMMIT)
    done, stdout = _run(compare, argv)
    yield dict(root=root, argv=argv, done=done, stdout=stdout, mp=mp)
    mp.undo()


def _no_training(compare, monkeypatch):
    def train(cfg):
        raise AssertionError(f'trained {cfg.work_dir}')

    monkeypatch.setattr(training, 'train', train)


def test_every_run_writes_a_result_file(protocol):
    results_dir = protocol['root'] / 'results'
    runs = [(v, 'SOLO', s) for s in (0, 1) for v in ('demo', 'dense')]
    assert protocol['done']['ran'] == runs
    results = load_results(str(results_dir))
    assert [(r['variant'], r['seed']) for r in results] == [
        ('demo', 0), ('demo', 1), ('dense', 0), ('dense', 1)
    ]
    for r in results:
        assert r['name'] == 'SOLO' and r['max_iters'] == 2
        assert r['code_commit'] == COMMIT
        assert 'mmdet_pep/datasets/checks.py' in r['code_files']
        # CrowdCocoMetric's numbers next to CocoMetric's.
        for key in ('coco/segm_mAP', 'coco/bbox_mAP',
                    'coco/segm_crowded_recall50',
                    'coco/segm_duplicates_per_img'):
            assert key in r['metrics']
        assert r['train_step_ms'] > 0 and r['train_minutes'] > 0
        # Tested on the held-out test split, and on val.
        assert r['split'] == 'test'
        assert 'coco/segm_mAP' in r['val_metrics']
    demo, _, dense, _ = results
    # Same config within a variant, another one (4 classes, 144 px) across.
    assert results[0]['config_digest'] == results[1]['config_digest']
    assert demo['config_digest'] != dense['config_digest']
    # Each run trained in its own work dir, on its variant's classes.
    work = protocol['root'] / 'work'
    for v, s in (('demo', 0), ('dense', 1)):
        assert (work / v / 'SOLO' / f'seed{s}' / 'iter_2.pth').is_file()


def test_table_is_built_from_the_files(protocol):
    text = (protocol['root'] / 'results' / 'README.md').read_text()
    assert text in protocol['stdout']
    results = load_results(str(protocol['root'] / 'results'))
    summary = summarize(results, ['SOLO'], ['demo', 'dense'])
    rows = [line for line in text.splitlines() if line.startswith('| SOLO')]
    assert [row.split(' | ')[1:3] for row in rows[:3]] == [['demo', '2'],
                                                         ['dense', '2'],
                                                         ['all', '4']]
    mean, std, _ = summary['SOLO']['all']['coco/segm_mAP']
    assert rows[2].split(' | ')[3] == f'{mean * 100:.1f} ± {std * 100:.1f}'
    assert len(rows) == 3 + 4  # the summary, then every run


def test_rerun_skips_current_results(protocol, compare, monkeypatch):
    _no_training(compare, monkeypatch)
    done, _ = _run(compare, protocol['argv'])
    assert done['ran'] == [] and len(done['skipped']) == 4


def test_a_finished_training_is_tested_not_retrained(protocol, compare,
                                                      monkeypatch):
    path = protocol['root'] / 'results' / 'dense' / 'SOLO' / 'seed1.json'
    before = json.loads(path.read_text())
    os.remove(path)
    _no_training(compare, monkeypatch)
    done, _ = _run(compare, protocol['argv'])
    assert done['ran'] == [('dense', 'SOLO', 1)]
    after = json.loads(path.read_text())
    assert after['metrics'] == before['metrics']
    # Not measured again: the cost of the training that made it, from its
    # work dir's stamp.
    assert after['train_step_ms'] == before['train_step_ms'] > 0
    assert after['train_minutes'] == before['train_minutes'] > 0


def test_a_training_of_other_code_is_not_reused(protocol, compare,
                                                monkeypatch):
    path = protocol['root'] / 'results' / 'demo' / 'SOLO' / 'seed0.json'
    stamp = (protocol['root'] / 'work' / 'demo' / 'SOLO' / 'seed0' /
             'fingerprint.json')
    text, stamp_text = path.read_text(), stamp.read_text()
    os.remove(path)
    monkeypatch.setattr(protocol_lib, 'code_commit',
                        lambda files, root: 'f' * 40)
    monkeypatch.setattr(training, 'code_commit',
                        lambda files, root: 'f' * 40)
    _no_training(compare, monkeypatch)
    try:
        with pytest.raises(AssertionError,
                           match='trained .*demo/SOLO/seed0'):
            _run(compare, protocol['argv'])
    finally:
        # The would-be training stamped its work dir for the other code.
        assert stamp.read_text() != stamp_text
        path.write_text(text)
        stamp.write_text(stamp_text)


def test_other_metric_code_retests_not_retrains(protocol, compare,
                                                monkeypatch):
    # A commit that changed only evaluation code (a metric): the result is
    # stale, the training code's commit is the stamp's, so the finished
    # checkpoint is tested again and the result written for the new code.
    path = protocol['root'] / 'results' / 'demo' / 'SOLO' / 'seed0.json'
    text = path.read_text()
    monkeypatch.setattr(protocol_lib, 'code_commit',
                        lambda files, root: 'e' * 40)
    _no_training(compare, monkeypatch)
    argv = protocol['argv'].copy()
    argv[argv.index('--seeds') + 1:argv.index('--variants')] = ['0']
    argv[argv.index('--variants') + 1:argv.index('--data-dir')] = ['demo']
    try:
        done, _ = _run(compare, argv)
        assert done['ran'] == [('demo', 'SOLO', 0)]
        after = json.loads(path.read_text())
        assert after['code_commit'] == 'e' * 40
        assert after['metrics'] == json.loads(text)['metrics']
    finally:
        path.write_text(text)


def test_another_config_makes_the_results_stale(protocol, compare):
    argv = protocol['argv'] + [
        '--table-only', '--cfg-options', 'model.test_cfg.max_per_img=10'
    ]
    done, stdout = _run(compare, argv)
    assert done['ran'] == [] and len(done['pending']) == 4
    assert '4 stale run(s)' in done['table']
    assert '| SOLO |' not in done['table']
    # The files are kept: the original config makes them current again.
    done, _ = _run(compare, protocol['argv'] + ['--table-only'])
    assert len(done['skipped']) == 4 and 'stale' not in done['table']


def test_the_data_folder_is_not_part_of_a_runs_fingerprint(
        protocol, compare, monkeypatch, tmp_path):
    # The same generated data sets in another folder: every run stays
    # current, and a finished training whose result file is gone is
    # tested, not trained again, with the digest it had.
    moved = tmp_path / 'elsewhere'
    shutil.copytree(protocol['root'] / 'data', moved)
    argv = protocol['argv'].copy()
    argv[argv.index('--data-dir') + 1] = str(moved)
    _no_training(compare, monkeypatch)
    done, _ = _run(compare, argv + ['--table-only'])
    assert len(done['skipped']) == 4 and 'stale' not in done['table']
    path = protocol['root'] / 'results' / 'dense' / 'SOLO' / 'seed0.json'
    text = path.read_text()
    os.remove(path)
    try:
        done, _ = _run(compare, argv)
        assert done['ran'] == [('dense', 'SOLO', 0)]
        before, after = json.loads(text), json.loads(path.read_text())
        assert after['config_digest'] == before['config_digest']
        assert after['metrics'] == before['metrics']
    finally:
        path.write_text(text)


def test_a_table_of_another_schedule_says_which_to_pass(protocol, compare):
    # The schedule is in the config digest: rebuilt without the runs'
    # --max-iters (here 3 instead of 2), every run is stale, and the table
    # and the log say which --max-iters judges them.
    argv = [a if a != '2' else '3' for a in protocol['argv']]
    done, stdout = _run(compare, argv + ['--table-only'])
    hint = ('Stale runs trained for [2] iterations, this table for [3]: '
            'rebuild with --max-iters 2 to judge them.')
    assert '4 stale run(s)' in done['table'] and hint in done['table']
    assert hint in stdout
    done, _ = _run(compare, protocol['argv'] + ['--table-only'])
    assert 'stale' not in done['table'] and 'rebuild' not in done['table']


def test_another_evaluation_retests_the_finished_trainings(
        protocol, compare, monkeypatch, tmp_path):
    # Only model.test_cfg differs: every run is tested again from its
    # finished checkpoint (no training) and written as current for the new
    # config, with the training digest of the old one.
    _no_training(compare, monkeypatch)
    results_dir = str(protocol['root'] / 'results')
    argv = [a if a != results_dir else str(tmp_path)
            for a in protocol['argv']]
    argv += ['--cfg-options', 'model.test_cfg.max_per_img=1']
    done, _ = _run(compare, argv)
    assert sorted(done['ran']) == sorted(protocol['done']['ran'])
    old = {(r['variant'], r['seed']): r for r in load_results(results_dir)}
    for r in load_results(str(tmp_path)):
        before = old[(r['variant'], r['seed'])]
        assert r['training_digest'] == before['training_digest']
        assert r['config_digest'] != before['config_digest']
        assert r['train_minutes'] == before['train_minutes'] > 0
    # A setting that trains differently is trained again.
    argv[-1] = 'model.mask_head.feat_channels=8'
    with pytest.raises(AssertionError, match='trained'):
        _run(compare, argv)


def test_options_apply_to_the_named_models_only(protocol, compare,
                                               monkeypatch, tmp_path):
    # TOP1: SOLO's config with --cfg-options, in a copy of the results next
    # to SOLO's runs; tested from a copy of SOLO's seed-0 training (only
    # model.test_cfg differs, so nothing trains).
    root = protocol['root']
    shutil.copytree(root / 'results', tmp_path / 'results')
    work = tmp_path / 'work' / 'demo' / 'TOP1' / 'seed0'
    shutil.copytree(root / 'work' / 'demo' / 'SOLO' / 'seed0', work)
    # Stamped from SOLO's result (a test above re-stamps SOLO's work dir
    # for a training it then refuses).
    solo = json.loads(
        (root / 'results' / 'demo' / 'SOLO' / 'seed0.json').read_text())
    (work / 'fingerprint.json').write_text(
        json.dumps({
            key: solo[key]
            for key in ('config_digest', 'code_commit', 'training_digest')
        }))
    moved = {
        str(root / 'results'): str(tmp_path / 'results'),
        str(root / 'work'): str(tmp_path / 'work')
    }
    base = [moved.get(a, a) for a in protocol['argv']]
    config = base[0].split('=', 1)[1]
    _no_training(compare, monkeypatch)
    done, _ = _run(compare, [
        f'TOP1={config}', '--seeds', '0', '--variants', 'demo',
        *base[base.index('--data-dir'):], '--cfg-options',
        'model.test_cfg.max_per_img=1'
    ])
    assert done['ran'] == [('demo', 'TOP1', 0)]
    top1 = json.loads(
        (tmp_path / 'results' / 'demo' / 'TOP1' / 'seed0.json').read_text())
    assert top1['cfg_options'] == {'model.test_cfg.max_per_img': 1}
    # SOLO, not named, is judged by its own (empty) options: current.
    assert 'stale' not in done['table']
    assert any(row.startswith('| SOLO |') for row in _table_rows(
        done['table']))
    # Naming SOLO alone, without options, keeps TOP1 current by the options
    # its run recorded.
    done, _ = _run(compare, base + ['--table-only'])
    assert len(done['skipped']) == 4 and 'stale' not in done['table']
    assert '| TOP1 | demo | 1 |' in done['table']
    solo = json.loads(
        (tmp_path / 'results' / 'demo' / 'SOLO' / 'seed0.json').read_text())
    assert solo.get('cfg_options') is None


def test_uncommitted_model_code_is_refused(protocol, compare, monkeypatch,
                                            tmp_path):
    monkeypatch.setattr(protocol_lib, 'code_commit',
                        lambda files, root: COMMIT + '+dirty')
    argv = [a if a != str(protocol['root'] / 'results') else str(tmp_path)
            for a in protocol['argv']]
    with pytest.raises(RuntimeError, match='uncommitted'):
        _run(compare, argv)


@pytest.mark.parametrize('extra', [['--checkpoints', 'a.pth'],
                                   ['--eval-only'], ['--data-root', 'd'],
                                   ['--seed', '1'], ['--latency-dir', 'l'],
                                   ['--seeds', '0', '0'],
                                   ['--seeds', '-1']])
def test_protocol_arguments(compare, extra):
    argv = ['--variants', 'demo'] + extra
    with pytest.raises(SystemExit):
        compare.parse_args(argv)


def test_protocol_defaults(compare):
    args = compare.parse_args(['--variants', 'dense'])
    assert args.protocol and args.seeds == [0]
    args = compare.parse_args(['--seeds', '1', '2'])
    assert args.variants == ['demo']
    assert not compare.parse_args([]).protocol
    assert protocol_lib.variant_data_root('d', 'demo') == osp.join(
        'd', 'synthetic') + '/'
    assert protocol_lib.variant_data_root('d', 'dense') == osp.join(
        'd', 'synthetic_dense') + '/'
