"""tools/analysis_tools/compare_vis.py on tiny clips: SipMask-VIS trained
for 2 iterations with seeds 0 and 1, one result file per run, the table of
YouTube-VIS AP and identity switches built from them, a re-run that trains
nothing."""
import os.path as osp

import pytest
import torch

from mmdet_pep.datasets.synthetic_video import generate_vis_dataset
from mmdet_pep_tools import protocol as protocol_lib, training
from mmdet_pep_tools.results import VIS_TABLE_METRICS, load_results
from mmdet_pep_tools.specs import build_specs
from pep_testing import ROOT, load_tool
CONFIG = osp.join(ROOT, 'configs', 'sipmask',
                  'sipmask-vis_r18_fpn_1200it_synthetic-vis.py')
COMMIT = 'c0ffee' * 6 + 'abcd'



@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis_tools/compare_vis')


def _main(tool, argv):
    threads = torch.get_num_threads()
    try:
        return tool.main(argv)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def protocol(tool, tmp_path_factory):
    root = tmp_path_factory.mktemp('compare_vis')
    data_root = str(root / 'data') + '/'
    generate_vis_dataset(data_root, num_train=3, num_val=2, num_frames=3,
                         image_size=64, num_test=2)
    argv = [
        f'SipMask-VIS={CONFIG}', '--seeds', '0', '1', '--data-root',
        data_root, '--results-dir',
        str(root / 'results'), '--work-dir',
        str(root / 'work'), '--max-iters', '2', '--step-warmup', '0',
        '--threads', '1', '--cfg-options',
        'model.detector.test_cfg.score_thr=0', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        # From scratch: the image step is tests/test_mmdet_pep_tools/
        # test_image_init.py's.
        'load_from=None'
    ]
    # Independent of uncommitted changes in this checkout.
    mp = pytest.MonkeyPatch()
    mp.setattr(protocol_lib, 'code_commit', lambda files, root: COMMIT)
    done = _main(tool, argv)
    yield dict(root=root, argv=argv, done=done)
    mp.undo()


def test_every_seed_writes_a_result_file(protocol):
    assert protocol['done']['ran'] == [('clips', 'SipMask-VIS', 0),
                                       ('clips', 'SipMask-VIS', 1)]
    results = load_results(str(protocol['root'] / 'results'))
    assert [(r['variant'], r['name'], r['seed']) for r in results] == [
        ('clips', 'SipMask-VIS', 0), ('clips', 'SipMask-VIS', 1)
    ]
    for r in results:
        assert r['max_iters'] == 2 and r['code_commit'] == COMMIT
        assert 'mmdet_pep/models/vis/sipmask_vis.py' in r['code_files']
        assert 0 <= r['metrics']['youtube_vis/segm_mAP'] <= 1
        assert r['metrics']['youtube_vis/id_switches'] >= 0
        assert r['metrics']['test_ms_per_frame'] > 0
    assert results[0]['config_digest'] == results[1]['config_digest']
    work = protocol['root'] / 'work' / 'clips' / 'SipMask-VIS'
    assert (work / 'seed1' / 'iter_2.pth').is_file()


def test_table_has_the_video_columns(protocol):
    text = (protocol['root'] / 'results' / 'README.md').read_text()
    assert text == protocol['done']['table']
    assert text.startswith('# Video instance segmentation over seeds')
    header = next(line for line in text.splitlines()
                  if line.startswith('| Model | Data | runs'))
    assert header == '| Model | Data | runs | ' + ' | '.join(
        title for _, title, _ in VIS_TABLE_METRICS) + ' |'
    rows = [line for line in text.splitlines()
            if line.startswith('| SipMask-VIS |')]
    assert rows[0].startswith('| SipMask-VIS | clips | 2 |')
    assert len(rows) == 1 + 2  # the mean, then every run


def test_rerun_trains_nothing(protocol, tool, monkeypatch):
    def train(cfg):
        raise AssertionError(f'trained {cfg.work_dir}')

    monkeypatch.setattr(training, 'train', train)
    done = _main(tool, protocol['argv'])
    assert done['ran'] == [] and len(done['skipped']) == 2
    done = _main(tool, protocol['argv'] + ['--table-only'])
    assert done['ran'] == [] and len(done['skipped']) == 2


def test_default_models_and_bad_arguments(tool):
    specs = build_specs(tool.parse_args([]))
    assert [s.name for s in specs] == ['SipMask-VIS', 'MaskTrack-RCNN']
    assert all(osp.isfile(s.config) for s in specs)
    for argv in (['--seeds', '0', '0'], ['--seeds', '-1'],
                 ['--max-iters', '0']):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)
