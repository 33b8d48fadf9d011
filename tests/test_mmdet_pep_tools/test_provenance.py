"""mmdet_pep_tools.provenance: which code and config a result comes from."""
import os.path as osp
import subprocess

from mmengine.config import Config

from mmdet_pep_tools.provenance import (_imported_files, code_commit,
                                        code_files, config_digest,
                                        training_code_files, training_digest)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PEP = osp.join(ROOT, 'configs/pep/pep_r18_fpn_1200it_synthetic.py')
SOLOV2 = osp.join(ROOT, 'configs/solov2/solov2_r18_fpn_1200it_synthetic.py')
VIS = osp.join(ROOT,
               'configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py')


def test_code_files_follow_the_config_and_its_imports():
    pep = code_files(Config.fromfile(PEP))
    # The registered modules the config names ...
    for path in ('mmdet_pep/models/detectors/pep.py',
                 'mmdet_pep/models/dense_heads/pep_head.py',
                 'mmdet_pep/datasets/checks.py',
                 'mmdet_pep/datasets/transforms.py'):
        assert path in pep
    # ... and what they import, relatively or not.
    assert 'mmdet_pep/models/layers/pep_purifier.py' in pep
    assert 'mmdet_pep/models/utils/misc.py' in pep
    assert pep == sorted(pep)
    solov2 = code_files(Config.fromfile(SOLOV2))
    # mmdet's model: none of ours, only the data pipeline and hooks.
    assert not [p for p in solov2 if p.startswith('mmdet_pep/models')]
    assert 'mmdet_pep/datasets/checks.py' in solov2


def test_training_code_files_leave_out_what_only_tests():
    """A metric's or a tracker's code runs at test time only: a change to
    it re-tests a finished training instead of repeating it."""
    cfg = Config.fromfile(VIS)
    everything, training = code_files(cfg), training_code_files(cfg)
    assert sorted(set(everything) - set(training)) == [
        'mmdet_pep/evaluation/metrics/youtube_vis_metric.py',
        'mmdet_pep/models/trackers/sipmask_vis_tracker.py'
    ]
    assert 'mmdet_pep/models/tracking_heads/sipmask_track_head.py' in training
    assert 'mmdet_pep/models/vis/sipmask_vis.py' in training


def test_imported_files_resolve_relative_imports():
    head = osp.join(ROOT, 'mmdet_pep/models/dense_heads/pep_head.py')
    found = {osp.relpath(p, ROOT) for p in _imported_files(head)}
    # from ..utils import coord_grid, masks_to_boxes: the package, and the
    # names are tried as submodules (none of them is one); from
    # ..utils.ranking import topk_stable: the module (its package too).
    assert found == {'mmdet_pep/models/utils/__init__.py',
                     'mmdet_pep/models/utils/ranking.py'}
    init = osp.join(ROOT, 'mmdet_pep/models/utils/__init__.py')
    found = {osp.relpath(p, ROOT) for p in _imported_files(init)}
    assert 'mmdet_pep/models/utils/misc.py' in found  # from .misc import


def test_config_digest_ignores_where_a_run_writes():
    cfg = Config.fromfile(PEP)
    digest = config_digest(cfg)
    assert len(digest) == 64
    cfg.work_dir = 'elsewhere'
    cfg.randomness = dict(seed=3)
    cfg.experiment_name = 'x'
    assert config_digest(cfg) == digest
    cfg.model.mask_head.num_classes = 4
    assert config_digest(cfg) != digest
    other = Config.fromfile(PEP)
    other.train_cfg.max_iters = 10
    assert config_digest(other) != digest


def test_code_commit(tmp_path):
    def git(*args):
        return subprocess.run(['git', '-C', str(tmp_path), *args],
                              check=True, capture_output=True,
                              text=True).stdout.strip()

    git('init', '-q')
    git('config', 'user.email', 't@t')
    git('config', 'user.name', 't')
    (tmp_path / 'a.py').write_text('a = 1\n')
    (tmp_path / 'b.py').write_text('b = 1\n')
    git('add', '.')
    git('commit', '-qm', 'both')
    first = git('rev-parse', 'HEAD')
    (tmp_path / 'b.py').write_text('b = 2\n')
    git('commit', '-qam', 'b only')
    second = git('rev-parse', 'HEAD')
    assert code_commit(['a.py'], str(tmp_path)) == first
    assert code_commit(['a.py', 'b.py'], str(tmp_path)) == second
    (tmp_path / 'a.py').write_text('a = 2\n')
    assert code_commit(['a.py'], str(tmp_path)) == first + '+dirty'
    assert code_commit(['b.py'], str(tmp_path)) == second
    assert code_commit(['a.py'], str(tmp_path / 'nope')) == 'unknown'


def test_training_digest_leaves_out_what_only_evaluates():
    cfg = Config.fromfile(PEP)
    digest, trained = config_digest(cfg), training_digest(cfg)
    assert len(trained) == 64 and trained != digest
    cfg.model.test_cfg.purify.mask_iou_thr = 0.5
    cfg.test_evaluator = dict(type='CocoMetric', metric='segm')
    cfg.test_dataloader.batch_size = 7
    assert config_digest(cfg) != digest
    assert training_digest(cfg) == trained
    # What trains, and what validates during training, still counts.
    for key, value in (('model.mask_head.num_classes', 4),
                       ('optim_wrapper.optimizer.lr', 0.5),
                       ('val_evaluator.metric', 'bbox')):
        other = Config.fromfile(PEP)
        other.merge_from_dict({key: value})
        assert training_digest(other) != trained, key
