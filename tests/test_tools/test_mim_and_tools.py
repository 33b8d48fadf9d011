"""The command-line entry points, end to end on a tiny synthetic set.

Every run is a real subprocess from the repository root, as a user would
type it: ``tools/train.py`` (train, resume), ``tools/test.py``,
``tools/dist_train.sh`` on the CPU, ``mim train/test mmdet``, which run
mmdet's own tools and reach PEP only through the config's ``custom_imports``,
and ``mim search/train/test mmdet_pep``, which read ``mmdet_pep/.mim``.
"""
import glob
import json
import os
import os.path as osp
import pickle
import runpy
import shutil
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from modelindex.load_model_index import load as load_model_index
from pycocotools import mask as mask_utils

import mmdet
from mmdet_pep.datasets.synthetic import generate_coco_split
from mmdet_pep.utils import load_checkpoint_weights_only
from mmdet_pep_tools.reported import load_reported
from pep_testing import check_masks_in_boxes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = 'configs/pep/pep_r18_fpn_tiny_synthetic.py'
MODEL_INDEX = osp.join(ROOT, 'model-index.yml')
PYTHON = sys.executable
MIM = osp.join(osp.dirname(sys.executable), 'mim')
TIMEOUT = 300
DDP_REDUCTION_ERROR = 'Expected to have finished reduction in the prior'


def make_data(data_root, num_train=6, num_val=4, num_test=3):
    for split, num in (('train', num_train), ('val', num_val),
                       ('test', num_test)):
        generate_coco_split(data_root, split, num, image_size=64)
    return data_root


def data_options(data_root):
    """``--cfg-options`` that point every data set and evaluator there."""
    data_root = data_root.rstrip('/') + '/'
    ann_file = data_root + 'annotations/instances_val.json'
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'val_evaluator.ann_file={ann_file}',
        f'test_evaluator.ann_file={ann_file}',
    ]


def run(cmd, cwd=ROOT, **env):
    """Run ``cmd`` in ``cwd`` (the repository root); return its merged
    output."""
    # On a small shared CPU, OpenMP threads spinning against other busy
    # processes made a tiny training step 50x slower (9 s instead of 0.2 s).
    env = dict(os.environ, OMP_NUM_THREADS='1', **env)
    # dist_train.sh calls a bare `python`; it must be this environment's.
    env['PATH'] = osp.dirname(PYTHON) + os.pathsep + env.get('PATH', '')
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f'{" ".join(cmd)} exited with {proc.returncode}:\n'
        f'{proc.stdout[-5000:]}')
    return proc.stdout


def read_log(work_dir):
    """Text of the newest run's log file in ``work_dir``."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    assert logs, f'no log file under {work_dir}'
    with open(logs[-1]) as f:
        return f.read()


def val_metrics(work_dir):
    """The last validation record of the newest run's scalars.json."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data')))
    with open(osp.join(runs[-1], 'scalars.json')) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if 'coco/segm_mAP' in r][-1]


def assert_coco_metrics(text):
    for metric in ('coco/bbox_mAP:', 'coco/segm_mAP:', 'coco/segm_mAP_50:'):
        assert metric in text, f'{metric} missing from the log'


def free_port():
    """A port the OS has just handed out (bind to port 0); never a fixed
    one, which another run or service on the machine may hold."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_on_free_port(cmd, attempts=3):
    """``run(cmd)`` with ``PORT`` (tools/dist_*.sh's master port) set to a
    free port. The port is free when asked for but not reserved until
    torchrun binds it, so a run that lost it to another process in between
    ("address already in use") is retried on a new one."""
    for attempt in range(attempts):
        try:
            return run(cmd, PORT=str(free_port()))
        except AssertionError as error:
            if (attempt + 1 == attempts
                    or 'address already in use' not in str(error).lower()):
                raise


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_data(str(tmp_path_factory.mktemp('tiny_synthetic')))


@pytest.fixture(scope='module')
def trained(data_root, tmp_path_factory):
    """A 4-iteration run of tools/train.py, shared by the tests below."""
    work_dir = str(tmp_path_factory.mktemp('train'))
    run([PYTHON, 'tools/train.py', TINY_CFG, '--work-dir', work_dir,
         '--cfg-options', *data_options(data_root)])
    return dict(
        work_dir=work_dir, log=read_log(work_dir),
        metrics=val_metrics(work_dir))


def test_train_saves_checkpoint_and_evaluates(trained):
    work_dir, log = trained['work_dir'], trained['log']
    assert 'Iter(train) [4/4]' in log
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    ckpt = load_checkpoint_weights_only(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    assert ckpt['meta']['dataset_meta']['classes'] == ('disc', 'square',
                                                        'triangle')
    assert_coco_metrics(log)
    # -1 would mean COCOeval found no ground truth or no detections.
    for metric in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert 0 <= trained['metrics'][metric] <= 1


def test_resume_continues_from_last_checkpoint(trained, data_root, tmp_path):
    # A copy, so that the shared run stays as it was for the other tests.
    work_dir = str(tmp_path / 'resume')
    shutil.copytree(trained['work_dir'], work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_4.pth'))

    run([PYTHON, 'tools/train.py', TINY_CFG, '--work-dir', work_dir,
         '--resume', '--cfg-options', *data_options(data_root),
         'train_cfg.max_iters=6'])

    log = read_log(work_dir)
    assert f'resumed from the latest checkpoint {work_dir}/iter_4.pth' in log
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [6/6]' in log
    assert 'Iter(train) [1/6]' not in log
    assert_coco_metrics(log)
    ckpt = load_checkpoint_weights_only(osp.join(work_dir, 'iter_6.pth'))
    assert ckpt['meta']['iter'] == 6


def test_test_py_evaluates_and_dumps(trained, data_root, tmp_path):
    out = str(tmp_path / 'preds.pkl')
    output = run([
        PYTHON, 'tools/test.py', TINY_CFG,
        osp.join(trained['work_dir'], 'iter_4.pth'), '--work-dir',
        str(tmp_path), '--out', out, '--cfg-options', *data_options(data_root)
    ])
    assert 'Iter(test) [2/2]' in output
    assert_coco_metrics(output)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 3  # one per image of the test split
    nonempty = 0
    for pred in preds:
        inst = pred['pred_instances']
        assert {'scores', 'labels', 'bboxes', 'masks'} <= set(inst)
        # Masks are dumped RLE-encoded at the original image size.
        masks = (mask_utils.decode(inst['masks']).transpose(2, 0, 1)
                 if len(inst['masks']) else np.zeros((0, 64, 64), bool))
        assert masks.shape == (len(inst['labels']), 64, 64)
        nonempty += check_masks_in_boxes(masks, inst['bboxes'].tolist())
    # The val images have objects and the tiny config keeps every
    # candidate (score_thr=0): some masks must have pixels, else the
    # metrics above were computed on nothing.
    assert nonempty > 0


def test_mim_train_and_test(data_root, tmp_path):
    work_dir = str(tmp_path / 'mim')
    output = run([
        MIM, 'train', 'mmdet', TINY_CFG, '--work-dir', work_dir,
        '--cfg-options', *data_options(data_root)
    ])
    # mim must have run mmdet's script, not ours: PEP then comes only from
    # the config's custom_imports.
    assert osp.join('mmdet', '.mim', 'tools', 'train.py') in output
    assert 'Training finished successfully' in output
    assert 'Iter(train) [4/4]' in output
    assert_coco_metrics(read_log(work_dir))
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)

    output = run([
        MIM, 'test', 'mmdet', TINY_CFG, '--checkpoint', ckpt, '--work-dir',
        str(tmp_path / 'mim_test'), '--cfg-options', *data_options(data_root)
    ])
    assert osp.join('mmdet', '.mim', 'tools', 'test.py') in output
    assert 'Testing finished successfully' in output
    assert f'Load checkpoint from {ckpt}' in output
    assert_coco_metrics(output)


@pytest.mark.parametrize('folder,method,loss', [
    ('embedmask', 'embedmask', 'loss_mask'),
    ('sipmask', 'sipmask', 'loss_mask'),
    ('spatial_embeddings', 'spatialemb', 'loss_inst'),
])
def test_mim_train_zoo_methods(data_root, tmp_path, folder, method, loss):
    """The synthetic EmbedMask, SipMask and SpatialEmbeddings configs
    train with mmdet's own train.py (``mim train mmdet``), cut to 4
    iterations, and are evaluated."""
    work_dir = str(tmp_path / f'mim_{method}')
    output = run([
        MIM, 'train', 'mmdet',
        f'configs/{folder}/{method}_r18_fpn_1200it_synthetic.py',
        '--work-dir', work_dir, '--cfg-options', *data_options(data_root),
        'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        # Keep every box of the untrained FCOS heads; SpatialEmbeddings has
        # no score threshold: its foreground and seed thresholds and minimum
        # size go to 0, or a seed map 4 steps into training (pushed below
        # 0.5 by the background pixels, random init, no fixed seed) may
        # yield no instance at all and the log no COCO numbers.
        *(['model.test_cfg.score_thr=0'] if folder != 'spatial_embeddings'
          else ['model.test_cfg.fg_thr=0.', 'model.test_cfg.seed_thr=0.',
                'model.test_cfg.min_pixels=0'])
    ])
    assert osp.join('mmdet', '.mim', 'tools', 'train.py') in output
    assert 'Iter(train) [4/4]' in output and loss in output
    assert_coco_metrics(read_log(work_dir))
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))


def test_mim_train_and_test_mmdet_pep_by_config_name(data_root, tmp_path):
    """``mim train/test mmdet_pep <config name>`` find the config and this
    package's own ``tools/train.py``/``test.py`` through ``mmdet_pep/.mim``."""
    work_dir = str(tmp_path / 'mim_pep')
    output = run([
        MIM, 'train', 'mmdet_pep',
        osp.basename(TINY_CFG), '--work-dir', work_dir, '--cfg-options',
        *data_options(data_root)
    ])
    assert osp.realpath(osp.join(ROOT, TINY_CFG)) in output
    assert osp.join('mmdet_pep', '.mim', 'tools', 'train.py') in output
    assert 'Iter(train) [4/4]' in output
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)

    output = run([
        MIM, 'test', 'mmdet_pep',
        osp.basename(TINY_CFG), '--checkpoint', ckpt, '--work-dir',
        str(tmp_path / 'mim_pep_test'), '--cfg-options',
        *data_options(data_root)
    ])
    assert osp.join('mmdet_pep', '.mim', 'tools', 'test.py') in output
    assert f'Load checkpoint from {ckpt}' in output
    assert_coco_metrics(output)


def keep_one_instance(ann_file, image_ids):
    """Strip ``image_ids`` down to one annotation each, in place."""
    with open(ann_file) as f:
        coco = json.load(f)
    seen, anns = set(), []
    for ann in coco['annotations']:
        if ann['image_id'] in image_ids:
            if ann['image_id'] in seen:
                continue
            seen.add(ann['image_id'])
        anns.append(ann)
    coco['annotations'] = anns
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return coco


def test_dist_train_and_test_on_cpu_with_targetless_batches(tmp_path):
    data_root = make_data(str(tmp_path / 'data'))
    ann_file = osp.join(data_root, 'annotations', 'instances_train.json')
    # Unshuffled, rank r of 2 reads images r, r + 2, ... of the file, so
    # rank 1 sees only images with a lone instance: no neighbours to
    # excavate. If the excavator then left parameters out of the graph, DDP
    # would fail on rank 1 at the next iteration's reduction.
    with open(ann_file) as f:
        image_ids = [img['id'] for img in json.load(f)['images']]
    lone = set(image_ids[1::2])
    coco = keep_one_instance(ann_file, lone)
    per_image = {i: 0 for i in image_ids}
    for ann in coco['annotations']:
        per_image[ann['image_id']] += 1
    assert all(per_image[i] == 1 for i in lone)
    assert all(per_image[i] > 1 for i in image_ids[0::2])

    work_dir = str(tmp_path / 'dist')
    output = run_on_free_port([
        'bash', 'tools/dist_train.sh', TINY_CFG, '2', '--work-dir', work_dir,
        '--cfg-options', *data_options(data_root),
        'train_dataloader.sampler.shuffle=False'
    ])
    assert DDP_REDUCTION_ERROR not in output
    assert 'using the gloo backend instead of nccl' in output
    assert 'Distributed training: True' in output
    assert 'GPU number: 2' in output  # mmengine's name for the world size
    assert 'Iter(train) [4/4]' in output
    assert_coco_metrics(output)
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)

    output = run_on_free_port([
        'bash', 'tools/dist_test.sh', TINY_CFG, ckpt, '2', '--work-dir',
        str(tmp_path / 'dist_test'), '--cfg-options', *data_options(data_root)
    ])
    assert 'GPU number: 2' in output
    assert_coco_metrics(output)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='--amp is supported with CUDA')
def test_amp_without_accelerator_fails_clearly(monkeypatch, tmp_path):
    # In-process: the check must fire before any Runner is built, so it
    # costs nothing to call main() directly.
    work_dir = str(tmp_path / 'amp')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', [
        'train.py',
        osp.join(ROOT, TINY_CFG), '--amp', '--work-dir', work_dir
    ])
    with pytest.raises(RuntimeError, match='--amp needs a GPU'):
        runpy.run_path(
            osp.join(ROOT, 'tools', 'train.py'), run_name='__main__')
    assert not osp.exists(work_dir)


def reported_mask_ap(dataset):
    """``{config name: mask AP}`` that the metafiles give for ``dataset``:
    the first result of each config's entry in docs/results/reported.yml
    (the papers' and official code bases' numbers, not reproduced here;
    ``build_tables.py --check`` ties the metafiles to that file)."""
    return {
        osp.splitext(osp.basename(e['config']))[0]:
        e['results'][0]['metrics']['mask AP']
        for e in load_reported(ROOT)['entries']
        if 'config' in e and e['results'][0]['dataset'] == dataset
    }


# COCO: PEP's Tab. 2, EmbedMask's code README of May 2020 (test-dev),
# SipMask's code README (val2017); Cityscapes: SpatialEmbeddings' released
# car model (val, car class) and the paper's 8-class model (test);
# YouTube-VIS 2019: SipMask-VIS's official README (val).
REPORTED = reported_mask_ap('COCO')
REPORTED_CITYSCAPES = reported_mask_ap('Cityscapes')
REPORTED_YOUTUBE_VIS = reported_mask_ap('YouTube-VIS 2019')
# Folders of the methods this package implements, each with a metafile.
METHODS = ('pep', 'embedmask', 'sipmask', 'spatial_embeddings')


def mim_search(tmp_path, *args, **env):
    """``mim search mmdet_pep ARGS --json``, as ``{config id: row}``."""
    out = tmp_path / f'search{len(list(tmp_path.glob("search*")))}.json'
    run([MIM, 'search', 'mmdet_pep', *args, '--json', str(out)], **env)
    with open(out) as f:
        columns = json.load(f)  # pandas' default layout: column -> id -> v
    rows = {}
    for column, values in columns.items():
        for config_id, value in values.items():
            if value is not None:
                rows.setdefault(config_id, {})[column] = value
    return rows


def assert_search_results(tmp_path, **env):
    index = load_model_index(MODEL_INDEX)
    listed = mim_search(tmp_path, **env)
    assert sorted(listed) == sorted(m.name for m in index.models)
    # Only the reported values.
    assert len(REPORTED) == 10 and len(REPORTED_CITYSCAPES) == 2
    assert len(REPORTED_YOUTUBE_VIS) == 1
    paper = mim_search(tmp_path, '--dataset', 'coco', '--condition',
                       'mask_ap>0', **env)
    assert {k: v['coco/mask_ap'] for k, v in paper.items()} == REPORTED
    coco = mim_search(tmp_path, '--dataset', 'coco', **env)
    assert coco and not any('synthetic' in name for name in coco)
    cityscapes = mim_search(tmp_path, '--dataset', 'cityscapes',
                            '--condition', 'mask_ap>0', **env)
    assert {k: v['cityscapes/mask_ap']
            for k, v in cityscapes.items()} == REPORTED_CITYSCAPES
    youtube_vis = mim_search(tmp_path, '--dataset', 'youtube-vis',
                             '--condition', 'mask_ap>0', **env)
    assert {k: v['youtube-vis 2019/mask_ap']
            for k, v in youtube_vis.items()} == REPORTED_YOUTUBE_VIS
    # Our own measurements are listed under the synthetic set (built from
    # the held-out result files by build_tables.py; none before those
    # runs exist).
    ours = mim_search(tmp_path, '--condition', 'mask_ap>0', **env)
    reported = set(paper) | set(cityscapes) | set(youtube_vis)
    assert set(ours) >= reported
    assert all('synthetic' in name for name in set(ours) - reported)
    return listed


def test_model_index_lists_every_config():
    index = load_model_index(MODEL_INDEX)
    configs = sorted(
        osp.relpath(p, ROOT) for method in METHODS
        for p in glob.glob(osp.join(ROOT, 'configs', method, '*.py')))
    assert sorted(m.config for m in index.models) == configs
    for model in index.models:
        assert model.name == osp.splitext(osp.basename(model.config))[0]
        assert model.weights is None  # nothing trained on COCO yet
        assert osp.isfile(osp.join(ROOT, model.full_model.readme))


def test_mim_search_in_this_environment(tmp_path):
    """``make setup`` links the editable package into site-packages, where
    mim looks for ``mmdet_pep/.mim/model-index.yml``."""
    assert_search_results(tmp_path)


def test_wheel_ships_mim_files_and_mim_search_reads_them(tmp_path):
    """A regular install (``pip install .``) carries configs, tools and the
    model index under ``mmdet_pep/.mim`` like mmdet's wheels do."""
    wheel_dir, site = tmp_path / 'wheel', tmp_path / 'site'
    pip = [PYTHON, '-m', 'pip', '--disable-pip-version-check']
    run([
        *pip, 'wheel', '.', '--no-deps', '--no-build-isolation', '-q', '-w',
        str(wheel_dir)
    ])
    wheel, = glob.glob(str(wheel_dir / 'mmdet_pep-*.whl'))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    expected = {'mmdet_pep/.mim/model-index.yml'}
    for sub in ('configs', 'tools'):
        for path in glob.glob(osp.join(ROOT, sub, '**', '*'), recursive=True):
            if osp.isfile(path) and not path.endswith('.pyc'):
                expected.add('mmdet_pep/.mim/' + osp.relpath(path, ROOT))
    assert expected <= names, sorted(expected - names)
    assert not any(name.endswith('.pyc') for name in names)

    run([*pip, 'install', '-q', '--no-deps', '--target', str(site), wheel])
    assert osp.isfile(site / 'mmdet_pep' / '.mim' / 'configs' / 'pep' /
                      'metafile.yml')
    # PYTHONPATH comes before site-packages, so mim finds this copy first.
    # (Run from tmp_path: from the repository root, the build's
    # mmdet_pep.egg-info in the current directory would come first.)
    found = run([
        PYTHON, '-W', 'ignore', '-c', 'from mim.utils import '
        'get_installed_path; print(get_installed_path("mmdet_pep"))'
    ],
                cwd=tmp_path,
                PYTHONPATH=str(site))
    assert found.strip() == str(site / 'mmdet_pep')
    listed = assert_search_results(tmp_path, PYTHONPATH=str(site))
    assert listed['pep_r101_fpn_3x_coco']['config'] == (
        'configs/pep/pep_r101_fpn_3x_coco.py')


def test_video_model_through_mim_train_and_mmdets_tracking_test(tmp_path):
    """SipMask-VIS on tiny synthetic clips: ``mim train mmdet`` (mmdet's
    own train.py) for 2 iterations with its YouTube-VIS validation, then
    mmdet's tracking test entry (tools/test_tracking.py) on the
    checkpoint."""
    from mmdet_pep.datasets.synthetic_video import generate_vis_split
    data_root = str(tmp_path / 'clips') + '/'
    generate_vis_split(data_root, 'train', 3, num_frames=3, image_size=64)
    generate_vis_split(data_root, 'val', 2, num_frames=3, image_size=64,
                       seed=1)
    # The held-out test clips that the tracking test runs on.
    generate_vis_split(data_root, 'test', 2, num_frames=3, image_size=64,
                       seed=2)
    config = 'configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py'
    options = [
        f'{split}_dataloader.dataset.data_root={data_root}'
        for split in ('train', 'val', 'test')
    ] + [
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'model.detector.test_cfg.score_thr=0',
        # From scratch (the image weights' file is not made here).
        'load_from=None'
    ]
    work_dir = str(tmp_path / 'mim_vis')
    output = run([
        MIM, 'train', 'mmdet', config, '--work-dir', work_dir,
        '--cfg-options', *options, 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2'
    ])
    assert osp.join('mmdet', '.mim', 'tools', 'train.py') in output
    assert 'loss_match' in output
    assert 'youtube_vis/segm_mAP:' in read_log(work_dir)
    ckpt = osp.join(work_dir, 'iter_2.pth')
    tool = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'tools', 'test_tracking.py')
    output = run([
        PYTHON, tool, config, '--checkpoint', ckpt, '--work-dir',
        str(tmp_path / 'track_test'), '--cfg-options', *options
    ])
    assert 'youtube_vis/segm_mAP:' in output
    assert 'youtube_vis/id_switches:' in output
