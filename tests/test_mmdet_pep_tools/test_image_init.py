"""The video models' image initialisation (mmdet_pep_tools.image_init):
compare_vis.py trains the image config by the protocol (mocked here: the
image model's initial weights stand for its training) and converts it
only when the video config's load_from is missing, before the video model
trains; tools/train.py stops naming the file and the command."""
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmdet_pep.datasets.synthetic import generate_dataset
from mmdet_pep.datasets.synthetic_video import generate_vis_dataset
from mmdet_pep.utils import load_checkpoint_weights_only
from mmdet_pep_tools import image_init, protocol as protocol_lib, runs
from mmdet_pep_tools.results import read_result
from mmdet_pep_tools.training import final_checkpoint
from mmdet_pep_tools.variant_data import variant_data_root
from pep_testing import ROOT, load_tool

COMMIT = 'c0ffee' * 6 + 'abcd'
VIDEO = {
    'SipMask-VIS': ('configs/sipmask/'
                    'sipmask-vis_r18_fpn_1200it_synthetic-vis.py', 'SipMask'),
    'MaskTrack-RCNN': ('configs/masktrack_rcnn/'
                       'masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py',
                       'Mask-RCNN'),
}


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis_tools/compare_vis')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('image_init_data')
    clips = str(root / 'clips') + '/'
    generate_vis_dataset(clips, num_train=1, num_val=1, num_frames=2,
                         image_size=64, num_test=1)
    images = str(root / 'images')
    generate_dataset(variant_data_root(images, 'demo'), num_train=1,
                     num_val=1, num_test=1, image_size=64)
    return dict(clips=clips, images=images)


class FakeTraining:
    """``train_and_test`` without training: an image run saves its
    model's initial weights as its final checkpoint; a video run checks
    that its load_from is there. Records the model type of every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, cfg, digest, commit, step_warmup, train_digest=None):
        self.calls.append(cfg.model.type)
        if 'detector' in cfg.model:
            assert osp.isfile(cfg.load_from), 'video model trained first'
            metrics = {'youtube_vis/segm_mAP': 0.1,
                       'youtube_vis/id_switches': 2.0}
        else:
            model = MODELS.build(cfg.model)
            model.init_weights()
            path = final_checkpoint(cfg)
            os.makedirs(cfg.work_dir, exist_ok=True)
            torch.save(dict(meta=dict(), state_dict=model.state_dict()),
                       path)
            metrics = {'coco/segm_mAP': 0.2}
        return metrics, dict(metrics), None, None


def _argv(name, data, root, *extra):
    return [
        f'{name}={osp.join(ROOT, VIDEO[name][0])}', '--data-root',
        data['clips'], '--results-dir', str(root / 'results'), '--work-dir',
        str(root / 'work'), '--image-data-dir', data['images'],
        '--image-work-dir', str(root / 'image_work'), '--image-results-dir',
        str(root / 'image_results'), '--cfg-options',
        f'load_from={root}/init/vis.pth', *extra
    ]


@pytest.mark.parametrize('name', sorted(VIDEO))
def test_the_image_step_runs_only_when_the_file_is_missing(
        tool, data, tmp_path, monkeypatch, name):
    fake = FakeTraining()
    monkeypatch.setattr(runs, 'train_and_test', fake)
    monkeypatch.setattr(protocol_lib, 'code_commit', lambda files, root:
                        COMMIT)
    config, image_name = VIDEO[name]
    image_cfg = Config.fromfile(osp.join(ROOT, config)).image_init.config
    image_type = Config.fromfile(osp.join(ROOT, image_cfg)).model.type
    video_type = Config.fromfile(osp.join(ROOT, config)).model.type
    init = tmp_path / 'init' / 'vis.pth'
    image_result = (tmp_path / 'image_results' / 'demo' / image_name /
                    'seed0.json')

    # Missing: the image model is trained (in its own work dir, with its
    # own result file), converted, then the video model trains.
    done = tool.main(_argv(name, data, tmp_path, '--seeds', '0'))
    assert fake.calls == [image_type, video_type]
    assert done['ran'] == [('clips', name, 0)]
    assert init.is_file()
    assert (tmp_path / 'image_work' / 'demo' / image_name / 'seed0' /
            'iter_1200.pth').is_file()
    result = read_result(str(image_result))
    assert (result['config'], result['seed'], result['max_iters']) == (
        image_cfg, 0, 1200)
    meta = load_checkpoint_weights_only(str(init))['meta']
    assert meta['image_init']['config'] == image_cfg
    assert meta['image_init']['code_commit'] == COMMIT
    assert all(k.startswith('track_head.') for k in meta['absent'])

    # There: another seed of the video model trains, the image model not.
    done = tool.main(_argv(name, data, tmp_path, '--seeds', '0', '1'))
    assert fake.calls == [image_type, video_type, video_type]
    assert done['ran'] == [('clips', name, 1)]

    # --init-only: the image step when the file is missing (its result
    # file, current, stays as it is), nothing when it is there; no video
    # model trains.
    init.unlink()
    written = image_result.read_text()
    done = tool.main(_argv(name, data, tmp_path, '--init-only'))
    assert done['made'] == [str(init)] and init.is_file()
    assert fake.calls[3:] == [image_type]
    assert image_result.read_text() == written
    done = tool.main(_argv(name, data, tmp_path, '--init-only'))
    assert done['made'] == [None] and len(fake.calls) == 4


def test_image_weights_are_tested_untrained_as_their_own_run(
        tool, data, tmp_path, monkeypatch):
    """--image-weights: SipMask-VIS's config tested (really) on its image
    initialisation, no video training: the run SipMask-VIS-image-weights
    of the image run's seed, 0 iterations, with the frame mask AP, in the
    table beside the trained run; a re-run keeps its current file."""
    fake = FakeTraining()
    monkeypatch.setattr(runs, 'train_and_test', fake)
    monkeypatch.setattr(protocol_lib, 'code_commit', lambda files, root:
                        COMMIT)
    loaders = [
        f'{split}_dataloader.{key}'
        for split in ('val', 'test')
        for key in ('num_workers=0', 'persistent_workers=False')
    ]
    argv = _argv('SipMask-VIS', data, tmp_path,
                 'model.detector.test_cfg.score_thr=0', *loaders, '--seeds',
                 '0', '--image-weights')
    done = tool.main(argv)
    image_type = Config.fromfile(osp.join(
        ROOT, VIDEO['SipMask-VIS'][0])).image_init.config
    assert len(fake.calls) == 2  # the image model, then the video model
    assert done['image_weights'] == [
        ('clips', 'SipMask-VIS-image-weights', 0, True)
    ]
    path = tmp_path / 'results' / 'clips' / 'SipMask-VIS-image-weights' \
        / 'seed0.json'
    result = read_result(str(path))
    assert result['max_iters'] == 0 and result['train_minutes'] is None
    assert result['config'] == VIDEO['SipMask-VIS'][0]
    for metrics in (result['metrics'], result['val_metrics']):
        assert 0 <= metrics['youtube_vis/frame_segm_mAP'] <= 1
        assert 0 <= metrics['youtube_vis/segm_mAP'] <= 1
    table = (tmp_path / 'results' / 'README.md').read_text()
    assert '| SipMask-VIS-image-weights | clips | 1 |' in table
    assert '| SipMask-VIS | clips | 1 |' in table
    assert image_type.endswith('sipmask_r18_fpn_1200it_synthetic.py')

    written = path.read_text()
    done = tool.main(argv)
    assert done['image_weights'] == [
        ('clips', 'SipMask-VIS-image-weights', 0, False)
    ]
    assert path.read_text() == written and len(fake.calls) == 2


def test_no_image_step_from_scratch_or_when_resuming(tmp_path):
    config = osp.join(ROOT, VIDEO['SipMask-VIS'][0])
    cfg = Config.fromfile(config)
    assert image_init.image_init_of(cfg) == cfg.image_init
    cfg.load_from = None
    assert image_init.image_init_of(cfg) is None
    assert image_init.ensure_image_init(cfg) is None
    cfg.load_from, cfg.resume = str(tmp_path / 'missing.pth'), True
    assert image_init.image_init_of(cfg) is None
    image_init.check_image_init(cfg, config)


def test_train_stops_naming_the_file_and_the_command(tmp_path, monkeypatch):
    """tools/train.py on a video config whose image weights are missing,
    before building the runner."""
    train = load_tool('train')
    config = 'configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py'
    missing = str(tmp_path / 'missing.pth')
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(train, 'Runner', None)  # never reached
    monkeypatch.setattr(sys, 'argv', [
        'train.py', config, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', f'load_from={missing}'
    ])
    with pytest.raises(FileNotFoundError) as error:
        train.main()
    message = str(error.value)
    assert f'load_from {missing} does not exist' in message
    assert ('python tools/analysis_tools/compare_vis.py '
            f'{config} --init-only --cfg-options load_from={missing}'
            in message)
    assert 'configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py' in message
    assert '--cfg-options load_from=None' in message
    # The config's own file (none in this folder): the command without
    # options.
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(osp.join(ROOT, config))
    with pytest.raises(FileNotFoundError) as error:
        image_init.check_image_init(cfg, osp.join(ROOT, config))
    assert (f'load_from {cfg.load_from} does not exist' in str(error.value))
    assert (f'python tools/analysis_tools/compare_vis.py {config} '
            '--init-only\n' in str(error.value))
