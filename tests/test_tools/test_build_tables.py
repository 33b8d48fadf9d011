"""tools/analysis_tools/build_tables.py: every generated table in the repo is
the one the committed result files and docs/results/reported.yml make, and,
on hand-made result files and a hand-made reported file in a temporary
tree, how the blocks are built and checked."""
import contextlib
import io
import json
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from mmdet_pep_tools import ROOT, deploy_table, protocol, vis_protocol
from mmdet_pep_tools.blocks import (MarkerError, render,
                                    replace_metafile_results)
from mmdet_pep_tools.provenance import model_digest
from mmdet_pep_tools.reported import (REPORTED_FILE, ReportedError, block,
                                      check, load_reported)
from mmdet_pep_tools.results import result_path, write_result
from mmdet_pep_tools.specs import DEFAULT_CONFIGS, ModelSpec
from mmdet_pep_tools.table_state import default_specs, protocol_args
from mmdet_pep_tools.tables import DATASET, PAGES, TABLES
from mmdet_pep_tools.vis_protocol import DEFAULT_CONFIGS as VIS_CONFIGS
from pep_testing import load_tool

COMMIT = 'c0ffee' * 6 + 'abcd'
CONFIGS = dict(DEFAULT_CONFIGS)


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis_tools/build_tables')


def _main(tool, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = tool.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_the_committed_tables_are_the_built_ones(tool):
    """README.md, configs/*/README.md and metafile.yml, docs/results/ and
    the archives: a number that differs from the result files fails."""
    code, out, err = _main(tool, ['--check'])
    assert code == 0, out + err


def test_every_block_has_a_file():
    assert set(TABLES) == {
        'zoo', 'demo', 'vis', 'deploy', 'displaced', 'tab2', 'pep', 'solov2',
        'condinst', 'embedmask', 'sipmask', 'spatial_embeddings'
    }
    for spec in TABLES.values():
        assert osp.isfile(osp.join(ROOT, spec['file']))
    assert 'docs/results/README.md' in PAGES
    assert 'docs/results_vis/README.md' in PAGES
    reported = load_reported(ROOT)
    assert set(reported['tables']) == {
        'embedmask', 'sipmask', 'sipmask-vis', 'spatial_embeddings'
    }
    for spec in reported['tables'].values():
        assert osp.isfile(osp.join(ROOT, spec['file']))


# --- a temporary tree with hand-made result files ---


def _fingerprint(name, variant):
    spec = ModelSpec(name, osp.join(ROOT, CONFIGS[name]))
    cfg = protocol.protocol_cfg(spec, protocol_args('.'), variant, 0)
    return protocol.fingerprint(cfg)


def _result(name, variant, seed, mask, crowded, val, current=True):
    digest, commit, files, _ = _fingerprint(name, variant)
    return dict(
        name=name, config=CONFIGS[name],
        config_digest=digest if current else 'an older config',
        code_commit=commit, code_files=files, cfg_options=None,
        variant=variant, seed=seed, max_iters=1200, split='test',
        metrics={'coco/segm_mAP': mask, 'coco/bbox_mAP': mask - 0.01,
                 'coco/segm_crowded_mAP': crowded},
        val_metrics={'coco/segm_mAP': val})


ZOO = ('# Zoo\n\n<!-- results:demo -->\nold\n<!-- /results:demo -->\n\n'
       '<!-- results:zoo -->\nold\n<!-- /results:zoo -->\n\n'
       '<!-- results:vis -->\n<!-- /results:vis -->\n\nEnd.\n')
PEP = '# PEP\n\n<!-- results:pep -->\n<!-- /results:pep -->\n'
PEP_PAPER = ('\nThe paper:\n\n<!-- reported:pep-coco -->\n| 99.9 |\n'
             '<!-- /reported:pep-coco -->\n\nEnd.\n')
REPORTED = """sources:
  paper:
    short: the paper
    metafile: the paper's Tab. 2
    cite: The paper, Tab. 2.
tables:
  pep-coco:
    file: configs/pep/README.md
    columns: [Schedule]
    notes: [The other tables are not checked.]
entries:
  - config: configs/pep/pep_r101_fpn_3x_coco.py
    readme: {table: pep-coco, Schedule: 3x}
    results:
      - {task: Instance Segmentation, dataset: COCO, split: val2017,
         metrics: {mask AP: 40.6}, source: paper, note: Tab. 2 "PEP"}
      - {task: Instance Segmentation, dataset: COCO, split: test-dev,
         metrics: {mask AP: 41.0}, source: paper}
  - label: R-50 (no config here)
    readme: {table: pep-coco, Schedule: 1x}
    results:
      - {task: Instance Segmentation, dataset: COCO, split: val2017,
         metrics: {mask AP: 35.5}, source: paper}
"""
METAFILE = """Models:
  - Name: pep_r18_fpn_1200it_synthetic
    In Collection: PEP-Synthetic
    Config: configs/pep/pep_r18_fpn_1200it_synthetic.py
    Metadata:
      Iterations: 1200
    Results:
      - Task: Instance Segmentation
        Dataset: Synthetic crowded objects
        Metrics:
          mask AP: 99.9  # typed by hand

  - Name: pep-baseline_r18_fpn_1200it_synthetic
    Config: configs/pep/pep-baseline_r18_fpn_1200it_synthetic.py
    Results:
      - Task: Instance Segmentation
        Dataset: Synthetic crowded objects
        Metrics:
          mask AP: 19.0

  - Name: pep_r101_fpn_3x_coco
    Config: configs/pep/pep_r101_fpn_3x_coco.py
    Results:
      - Task: Instance Segmentation
        Dataset: COCO
        Metrics:
          mask AP: 40.6  # the paper's

  - Name: pep-baseline_r101_fpn_3x_coco
    Config: configs/pep/pep-baseline_r101_fpn_3x_coco.py
    Results:
      - Task: Instance Segmentation
        Dataset: COCO
        Metrics:
          mask AP: 38.5  # typed by hand, not in the reported file
"""
METAFILE_REPORTED = """    Results:
      # Reported, not reproduced here: the paper's Tab. 2. From
      # docs/results/reported.yml.
      - Task: Instance Segmentation
        Dataset: COCO
        Metrics:
          mask AP: 40.6  # reported, val2017; Tab. 2 "PEP"
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """PEP: 2 seeds x 2 variants, current; SOLOv2: one stale run; a
    current latency file and export result for PEP and stale ones for
    CondInst."""
    monkeypatch.setattr(protocol, 'code_commit', lambda files, root: COMMIT)
    monkeypatch.setattr(deploy_table, 'code_commit',
                        lambda files, root: COMMIT)
    results = tmp_path / 'docs' / 'results'
    runs = [('PEP', 'demo', 0, .30, .20, .40), ('PEP', 'demo', 1, .32, .22,
                                                .42),
            ('PEP', 'dense', 0, .20, .10, .25), ('PEP', 'dense', 1, .22,
                                                 .12, .27)]
    for name, variant, seed, *values in runs:
        write_result(result_path(str(results), variant, name, seed),
                     _result(name, variant, seed, *values))
    write_result(result_path(str(results), 'demo', 'SOLOv2', 0),
                 _result('SOLOv2', 'demo', 0, .777, .666, .555,
                         current=False))
    for name, digest in (('PEP', None), ('CondInst', 'another model')):
        cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
        latency = dict(name=name, config=CONFIGS[name], code_commit=COMMIT,
                       model_digest=digest or model_digest(cfg),
                       device='cpu', device_name='x86_64', threads=2,
                       latency=dict(median_ms=12.34))
        path = results / 'latency' / f'{name}.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(latency))
        timing = dict(pytorch=dict(median_ms=16.2),
                      onnxruntime=dict(median_ms=8.1), ratio=0.5)
        deploy = dict(
            name=name, config=CONFIGS[name], code_commit=COMMIT,
            model_digest=digest or model_digest(cfg), checkpoint='x.pth',
            split='val', num_images=100, shape=[128, 128],
            metrics=dict(pytorch={'coco/segm_mAP': 0.345},
                         onnxruntime={'coco/segm_mAP': 0.344}),
            images_same_count=99, images_capped=None,
            latency={'128x128': timing, '800x1333': timing},
            machine='x86_64, 2 threads')
        path = results / 'deploy' / f'{name}.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(deploy))
    (tmp_path / 'docs' / 'deploy.md').write_text(
        '# Deploy\n\n<!-- results:deploy -->\n<!-- /results:deploy -->\n')
    # One current video run, one of an older config.
    spec = ModelSpec('SipMask-VIS', osp.join(ROOT, dict(VIS_CONFIGS)[
        'SipMask-VIS']))
    cfg = vis_protocol.vis_cfg(spec, vis_protocol.vis_args('.'), 'clips', 0)
    digest, commit, files, _ = protocol.fingerprint(cfg)
    for seed, current in ((0, True), (1, False)):
        write_result(
            result_path(str(tmp_path / vis_protocol.RESULTS_DIR), 'clips',
                        'SipMask-VIS', seed),
            dict(name='SipMask-VIS', config=dict(VIS_CONFIGS)['SipMask-VIS'],
                 config_digest=digest if current else 'older',
                 code_commit=commit, code_files=files, cfg_options=None,
                 variant='clips', seed=seed, max_iters=1200, split='test',
                 train_step_ms=700.,
                 metrics={'youtube_vis/segm_mAP': 0.123 + seed,
                          'youtube_vis/id_switches': 42.}))
    (tmp_path / 'README.md').write_text(ZOO)
    (tmp_path / 'configs' / 'pep').mkdir(parents=True)
    (tmp_path / 'configs' / 'pep' / 'README.md').write_text(PEP + PEP_PAPER)
    (tmp_path / 'configs' / 'pep' / 'metafile.yml').write_text(METAFILE)
    (tmp_path / REPORTED_FILE).write_text(REPORTED)
    return tmp_path


FILES = ['README.md', 'configs/pep/README.md', 'configs/pep/metafile.yml',
         'docs/results/README.md', 'docs/deploy.md',
         'docs/results_vis/README.md']


def test_blocks_from_current_test_runs(tree):
    built = render(str(tree), FILES)
    zoo = built['README.md'][1]
    assert zoo.startswith('# Zoo\n\n<!-- results:demo -->\n\n`make demo`')
    assert '<!-- results:zoo -->\n\n| Method |' in zoo
    assert zoo.endswith('<!-- /results:vis -->\n\nEnd.\n')
    # The video block: the current run only, its own field as a column.
    vis = zoo[zoo.index('<!-- results:vis -->'):]
    assert '| SipMask-VIS | 1 | 12.3 | - | - | 42.0 | - | - | 700.0 |' in vis
    assert '112.3' not in vis
    vis_page = built['docs/results_vis/README.md'][1]
    assert '| SipMask-VIS | clips | 0 | 1200 |' in vis_page
    assert '1 stale run(s)' in vis_page
    rows = {line.split(' | ')[0][2:]: line.split(' | ')
            for line in zoo.splitlines() if line.startswith('| ')}
    pep = rows['**PEP** (recommended)']
    # The mean over variants of the seed means: (31 + 21) / 2; the seed
    # std is 1.4 in both.
    assert pep[2] == ('[pep_r18_fpn_1200it_synthetic.py]'
                      '(configs/pep/pep_r18_fpn_1200it_synthetic.py)')
    assert pep[3:6] == ['26.0 ± 1.4', '16.0 ± 1.4', '2 seeds × 2 variants']
    assert pep[6] == '12.3'  # the current latency file
    assert pep[7] == '8.1 (0.50×) |'  # the current export result
    # SOLOv2's run is stale: not a number of it anywhere.
    assert rows['SOLOv2'][3:6] == ['—', '—', 'no held-out runs yet']
    assert '77.7' not in zoo and '66.6' not in zoo
    assert rows['CondInst'][6:] == ['—¹', '— |']  # stale files
    assert '¹ not measured.' in zoo

    pep_block = built['configs/pep/README.md'][1]
    lines = [line for line in pep_block.splitlines()
             if line.startswith('| PEP')]
    assert [line.split(' | ')[2:] for line in lines[:3]] == [
        ['demo', '2', '31.0 ± 1.4', '21.0 ± 1.4', '41.0 ± 1.4 |'],
        ['dense', '2', '21.0 ± 1.4', '11.0 ± 1.4', '26.0 ± 1.4 |'],
        ['all', '4', '26.0 ± 1.4', '16.0 ± 1.4', '33.5 ± 1.4 |'],
    ]
    # The Tab. 2 rows without runs say so.
    assert any(line.startswith('| PEP-baseline |') and 'no held-out runs'
               in line for line in lines)

    meta = built['configs/pep/metafile.yml'][1]
    assert 'mask AP: 26.0  # mean of 2 seeds × 2 variants' in meta
    assert 'box AP: 25.0' in meta and '99.9' not in meta
    assert 'Dataset: Synthetic crowded shapes (held-out test)' in meta
    # No runs: the typed number goes; the paper's COCO number comes from
    # the reported file, a COCO number it does not list goes.
    assert '19.0' not in meta and METAFILE_REPORTED in meta
    assert '38.5' not in meta

    deploy = built['docs/deploy.md'][1]
    rows = [line for line in deploy.splitlines() if line.startswith('| ')]
    # PEP's current result, two sizes; CondInst's stale one is left out.
    assert rows[1].startswith('| PEP | `x.pth` | val (100) | 34.5 | 34.4 | '
                              '99/100 | — | 128 × 128 | 16.2 | 8.1 | 0.50 |')
    assert rows[2].endswith('| 800 × 1333 | 16.2 | 8.1 | 0.50 |')
    assert len(rows) == 3 and 'CondInst' not in deploy

    page = built['docs/results/README.md'][1]
    assert '| PEP | all | 4 |' in page
    assert '1 stale run(s)' in page and 'SOLOv2' not in page


def test_crowded_runs_have_their_own_table_not_the_zoos(tree):
    # Seed 0 on crowded: PEP (with displaced numbers) and the Baseline.
    results = tree / 'docs' / 'results'
    for name, mask, disp in (('PEP', .25, .30), ('PEP-baseline', .24, .20)):
        run = _result(name, 'crowded', 0, mask, .1, mask + .01)
        run['metrics'].update({
            'coco/segm_displaced_mAP': disp / 2,
            'coco/segm_displaced_recall50': disp,
            'coco/segm_placed_recall50': .6,
            'coco/segm_duplicates_per_img': 1.25})
        run['val_metrics']['coco/segm_displaced_recall50'] = disp + .05
        write_result(result_path(str(results), 'crowded', name, 0), run)
    (tree / 'docs' / 'experiments').mkdir(parents=True)
    (tree / 'docs' / 'experiments' / 'displaced.md').write_text(
        '<!-- results:displaced -->\n<!-- /results:displaced -->\n'
        '<!-- results:tab2 -->\n<!-- /results:tab2 -->\n')
    built = render(str(tree), FILES + ['docs/experiments/displaced.md'])
    rows = [line for line in
            built['docs/experiments/displaced.md'][1].splitlines()
            if line.startswith('| PEP')]
    # The Baseline first (Tab. 2's order), then PEP.
    assert rows == [
        '| PEP-baseline | — | 0 | 24.0 | 10.0 | 20.0 | 60.0 | 1.25 | 25.0 '
        '| 25.0 |',
        '| PEP | — | 0 | 25.0 | 15.0 | 30.0 | 60.0 | 1.25 | 26.0 | 35.0 |']
    # The zoo and the config README keep demo and dense only.
    zoo = built['README.md'][1]
    pep = next(line for line in zoo.splitlines() if line.startswith(
        '| **PEP**')).split(' | ')
    assert pep[3:6] == ['26.0 ± 1.4', '16.0 ± 1.4', '2 seeds × 2 variants']
    assert '| crowded |' not in built['configs/pep/README.md'][1]


def test_check_finds_a_changed_cell(tree, tool):
    code, out, _ = _main(tool, ['--root', str(tree), *FILES])
    assert code == 0 and '6 generated files, rewrote 6' in out
    code, out, _ = _main(tool, ['--root', str(tree), '--check', *FILES])
    assert code == 0, out
    readme = tree / 'README.md'
    readme.write_text(readme.read_text().replace('26.0 ± 1.4', '28.0 ± 1.4',
                                                 1))
    code, out, _ = _main(tool, ['--root', str(tree), '--check', *FILES])
    assert code == 1
    assert '-| **PEP** (recommended)' in out and '28.0 ± 1.4' in out
    assert "['README.md']" in out


def test_a_missing_marker_names_the_file(tree, tool):
    (tree / 'configs' / 'pep' / 'README.md').write_text('# PEP\n' +
                                                         PEP_PAPER)
    with pytest.raises(MarkerError, match=r'configs/pep/README.md: .*'
                       r'<!-- results:pep -->'):
        render(str(tree), FILES)
    code, _, err = _main(tool, ['--root', str(tree), '--check', *FILES])
    assert code == 2 and 'configs/pep/README.md' in err
    # Twice is as wrong as never.
    (tree / 'configs' / 'pep' / 'README.md').write_text(PEP + PEP)
    with pytest.raises(MarkerError, match='once each'):
        render(str(tree), FILES)


def test_the_builder_judges_runs_as_the_protocol(tree, monkeypatch):
    """A run is current for the tables exactly when the protocol would
    skip it: here after a change of the model code, nothing counts."""
    args = protocol_args(str(tree))
    judged = protocol.judge_results(default_specs(), args, {})
    assert len(judged['current']) == 4 and len(judged['stale']) == 1
    monkeypatch.setattr(protocol, 'code_commit', lambda files, root: 'f' * 40)
    built = render(str(tree), FILES)
    assert '26.0' not in built['README.md'][1]
    assert '5 stale run(s)' in built['docs/results/README.md'][1]


def test_metafile_results_are_inserted_replaced_or_removed():
    run = dict(config='configs/pep/a_synthetic.py', variant='demo', seed=0,
               metrics={'coco/segm_mAP': 0.25, 'coco/bbox_mAP': 0.2})
    state = dict(runs={'A': [run, dict(run, seed=1)]})
    entry = ('  - Name: a\n    Config: configs/pep/a_synthetic.py\n'
             '    Metadata:\n      Iterations: 1200\n')
    old = ('    Results:\n      - Task: Instance Segmentation\n'
           '        Dataset: Synthetic crowded objects\n'
           '        Metrics:\n          mask AP: 99.9\n')
    built = ('    Results:\n      - Task: Instance Segmentation\n'
             f'        Dataset: {DATASET}\n        Metrics:\n'
             '          mask AP: 25.0  # mean of 2 seeds × 1 variant '
             '(demo); build_tables.py\n      - Task: Object Detection\n'
             f'        Dataset: {DATASET}\n        Metrics:\n'
             '          box AP: 20.0  # mean of 2 seeds × 1 variant '
             '(demo); build_tables.py\n')
    after = '\n  # the next entry\n  - Name: b\n    Config: b_coco.py\n'
    for text in (entry, entry + old):  # inserted, or replaced
        assert replace_metafile_results('Models:\n' + text + after,
                                        state) == ('Models:\n' + entry +
                                                   built + after)
    # A run recorded under an older file of the same config (a config
    # flattened or renamed, same digest) counts for the model's config now.
    renamed = dict(runs={'A': [dict(run, config='configs/pep/old.py'),
                               dict(run, seed=1)]},
                   configs={'A': 'configs/pep/a_synthetic.py'})
    assert replace_metafile_results('Models:\n' + entry + after,
                                    renamed) == ('Models:\n' + entry +
                                                 built + after)
    # No current runs: the Results go.
    assert replace_metafile_results('Models:\n' + entry + old + after,
                                    dict(runs={})) == ('Models:\n' + entry +
                                                       after)


def test_a_peer_row_shows_the_settings_better_on_val_not_on_test():
    """SOLOv2 and CondInst run at the zoo's adaptation and at mmdet's
    defaults; the zoo row takes the one with the higher val mask AP, even
    when the other scores higher on test."""
    from mmdet_pep_tools.tables import chosen_on_val

    def run(name, variant, val, test):
        return dict(name=name, variant=variant, metrics={
            'coco/segm_mAP': test}, val_metrics={'coco/segm_mAP': val})

    state = dict(runs={
        'CondInst': [run('CondInst', 'demo', 0.20, 0.30),
                     run('CondInst', 'dense', 0.10, 0.20)],
        'CondInst-mmdet': [run('CondInst-mmdet', 'demo', 0.22, 0.10),
                           run('CondInst-mmdet', 'dense', 0.12, 0.10)],
    })
    names = ('CondInst', 'CondInst-mmdet')
    assert chosen_on_val(state, names) == 'CondInst-mmdet'
    # Without runs of the defaults, the adapted config; without any, the
    # first; a single model is itself.
    del state['runs']['CondInst-mmdet']
    assert chosen_on_val(state, names) == 'CondInst'
    assert chosen_on_val(dict(runs={}), names) == 'CondInst'
    assert chosen_on_val(state, 'PEP') == 'PEP'


# --- the reported numbers (docs/results/reported.yml) ---


def test_reported_numbers_in_the_metafile_and_the_readme_block(tree):
    built = render(str(tree), FILES)
    meta = built['configs/pep/metafile.yml'][1]
    # The first result of the entry, its source as a comment; the second
    # (test-dev) and the README-only row only in the README.
    assert METAFILE_REPORTED in meta
    assert '41.0' not in meta and '35.5' not in meta
    readme = built['configs/pep/README.md'][1]
    assert '99.9' not in readme  # the old block content
    start = readme.index('<!-- reported:pep-coco -->')
    end = readme.index('<!-- /reported:pep-coco -->')
    assert readme[:start].endswith('\nThe paper:\n\n')
    assert readme[end:] == '<!-- /reported:pep-coco -->\n\nEnd.\n'
    lines = readme[start:end].splitlines()
    link = '[pep_r101_fpn_3x_coco.py](./pep_r101_fpn_3x_coco.py)'
    assert lines[2:7] == [
        '| Config | Schedule | mask AP | reported on | source |',
        '|:---|:---:|---:|:---|:---|',
        f'| {link} | 3x | 40.6 | COCO val2017 (Tab. 2 "PEP") | the paper ¹ |',
        f'| {link} | 3x | 41.0 | COCO test-dev | the paper ¹ |',
        '| R-50 (no config here) | 1x | 35.5 | COCO val2017 | the paper ¹ |',
    ]
    assert '\n¹ The paper, Tab. 2.\n' in readme[start:end]
    assert ('The other tables are not checked. Reported numbers, not '
            'reproduced here. Built by `tools/analysis_tools/build_tables.py` '
            'from [docs/results/reported.yml](../../docs/results/reported.yml)'
            in readme)


def test_check_finds_a_changed_reported_number(tree, tool):
    code, out, _ = _main(tool, ['--root', str(tree), *FILES])
    assert code == 0, out
    for path, old, new in (
        ('configs/pep/metafile.yml', 'mask AP: 40.6', 'mask AP: 40.9'),
        ('configs/pep/README.md', '| 41.0 |', '| 42.0 |'),
    ):
        file = tree / path
        text = file.read_text()
        file.write_text(text.replace(old, new, 1))
        code, out, _ = _main(tool, ['--root', str(tree), '--check', *FILES])
        assert code == 1 and f"['{path}']" in out
        assert new in out
        file.write_text(text)
    # A number changed in the reported file changes what is built.
    reported = tree / REPORTED_FILE
    reported.write_text(reported.read_text().replace('40.6', '40.7'))
    code, out, _ = _main(tool, ['--root', str(tree), '--check', *FILES])
    assert code == 1 and '+          mask AP: 40.7' in out
    assert 'configs/pep/metafile.yml' in out and 'configs/pep/README.md' in out


def test_reported_markers_and_file_errors(tree, tool):
    readme = tree / 'configs' / 'pep' / 'README.md'
    # Markers of a block that goes nowhere, or in another file.
    readme.write_text(PEP + PEP_PAPER + '<!-- reported:nope -->\n')
    with pytest.raises(MarkerError, match='reported:nope'):
        render(str(tree), FILES)
    # A declared block without its markers.
    readme.write_text(PEP)
    with pytest.raises(MarkerError, match='<!-- reported:pep-coco -->'):
        render(str(tree), FILES)
    readme.write_text(PEP + PEP_PAPER)
    reported = tree / REPORTED_FILE
    good = reported.read_text()
    for bad, match in (
        (good.replace('source: paper}', 'source: blog}'), 'unknown source'),
        (good.replace('{mask AP: 41.0}', '{mask AP: high}'), 'numbers'),
        (good.replace('R-50 (no config here)', 'x\n    config: a.py'),
         'either config or label'),
        (good.replace('{table: pep-coco, Schedule: 1x}', '{table: pep-coco}'),
         r"lacks \['Schedule'\]"),
    ):
        reported.write_text(bad)
        with pytest.raises(ReportedError, match=match):
            render(str(tree), FILES)
        code, _, err = _main(tool, ['--root', str(tree), '--check', *FILES])
        assert code == 2 and REPORTED_FILE in err
    data = yaml.safe_load(good)
    data['entries'].append(dict(data['entries'][0]))
    with pytest.raises(ReportedError, match='listed twice'):
        check(data)


def test_metafile_results_of_reported_configs():
    reported = check(yaml.safe_load(REPORTED))
    entry = ('  - Name: p\n    Config: configs/pep/pep_r101_fpn_3x_coco.py\n'
             '    Metadata:\n      Epochs: 36\n')
    other = '\n  - Name: q\n    Config: configs/pep/q_coco.py\n'
    old = ('    Results:\n      - Task: Instance Segmentation\n'
           '        Dataset: COCO\n        Metrics:\n'
           '          mask AP: 40.9  # edited\n')
    for text in (entry, entry + old):  # inserted, or replaced
        assert replace_metafile_results(
            'Models:\n' + text + other + old, {}, reported) == (
                'Models:\n' + entry + METAFILE_REPORTED + other)
    # Without a reported file, no paper numbers.
    assert replace_metafile_results('Models:\n' + entry + old, {}) == (
        'Models:\n' + entry)


def test_the_committed_reported_file():
    """Every config of docs/results/reported.yml exists and has a metafile
    entry (not a synthetic one); EmbedMask's numbers say which code made
    them."""
    reported = load_reported(ROOT)
    metafile_configs = set()
    for method in ('pep', 'embedmask', 'sipmask', 'spatial_embeddings'):
        with open(osp.join(ROOT, 'configs', method, 'metafile.yml')) as f:
            metafile_configs |= {
                m['Config'] for m in yaml.safe_load(f)['Models']
            }
    configs = [e['config'] for e in reported['entries'] if 'config' in e]
    assert len(configs) == len(set(configs)) == 13
    for config in configs:
        assert osp.isfile(osp.join(ROOT, config)), config
        assert config in metafile_configs and 'synthetic' not in config
    for entry in reported['entries']:
        if entry.get('from'):
            assert osp.isfile(osp.join(ROOT, entry['from']))
    embedmask = [
        r for e in reported['entries']
        if (e.get('readme') or {}).get('table') == 'embedmask'
        for r in e['results'] if r['source'] == 'embedmask-code-2020'
    ]
    assert sorted(r['metrics']['mask AP'] for r in embedmask) == [
        34.7, 36.4, 38.1
    ]
    cite = ' '.join(reported['sources']['embedmask-code-2020']['cite'].split())
    for words in ('May-2020 code', '8-d embeddings', 'one scalar margin',
                  'no per-level scales', 'padded GT box',
                  'has no published number'):
        assert words in cite
    text = block(reported, 'embedmask')
    assert '¹ ' + cite in text and 'IJCAI' in text and 'not checked' in text
    # The comment of EmbedMask's metafile entries says it too.
    with open(osp.join(ROOT, 'configs', 'embedmask', 'metafile.yml')) as f:
        meta = ' '.join(line.strip().lstrip('#').strip() for line in f)
    assert meta.count('the current version this config ports has no '
                      'published number') == 2


def test_an_evaluation_only_variant_is_listed_with_its_options():
    """A run recorded with --cfg-options (the same weights tested with
    another test_cfg) is a row of its method's block, naming the options;
    a name outside the protocol's defaults needs no default config."""
    from mmdet_pep_tools.tables import method_block
    run = dict(name='CondInst-x', variant='demo', seed=0,
               cfg_options={'model.test_cfg.nms_pre': 1000},
               metrics={'coco/segm_mAP': 0.25, 'coco/segm_crowded_mAP': 0.1},
               val_metrics={'coco/segm_mAP': 0.3})
    cfg = 'configs/condinst/condinst_r18_fpn_1200it_synthetic.py'
    text = method_block(dict(runs={'CondInst-x': [run]},
                             configs={'CondInst-x': cfg}),
                        'configs/condinst/README.md', 'configs/condinst')
    row = next(line for line in text.splitlines()
               if line.startswith('| CondInst-x |'))
    assert 'with `model.test_cfg.nms_pre=1000`' in row
    assert '| 25.0 | 10.0 | 30.0 |' in row


def test_options_that_differ_per_variant_are_named_per_row():
    """Class weights computed from each variant's training set differ per
    variant: each variant's row names its own runs' options, the ``all``
    row refers to them."""
    from mmdet_pep_tools.tables import method_block
    key = 'model.mask_head.loss_mask.foreground_weight'
    metrics = {'coco/segm_mAP': 0.25, 'coco/segm_crowded_mAP': 0.1}
    runs = [
        dict(name='SE-x', variant=variant, seed=seed,
             cfg_options={key: weights}, metrics=metrics,
             val_metrics={'coco/segm_mAP': 0.3})
        for variant, weights in (('demo', [8.8, 7.3]), ('dense', [15.6, 12.9]))
        for seed in (0, 1)
    ]
    cfg = 'configs/spatial_embeddings/spatialemb_r18_fpn_1200it_synthetic.py'
    text = method_block(dict(runs={'SE-x': runs}, configs={'SE-x': cfg}),
                        'configs/spatial_embeddings/README.md',
                        'configs/spatial_embeddings')
    rows = {line.split(' | ')[2]: line for line in text.splitlines()
            if line.startswith('| SE-x |')}
    assert sorted(rows) == ['all', 'demo', 'dense']
    demo, dense = f'`{key}=[8.8, 7.3]`', f'`{key}=[15.6, 12.9]`'
    assert demo in rows['demo'] and dense not in rows['demo']
    assert dense in rows['dense'] and demo not in rows['dense']
    assert demo not in rows['all'] and dense not in rows['all']
    assert "with each variant's `--cfg-options` (rows above)" in rows['all']


def test_tab2_rows_pair_detached_and_end_to_end_trainings():
    """The trained Tab. 2: dense runs (zoo variant) and crowded runs (other
    variant) of one row are found under their names; displaced recall only
    where the metric has it; a row without runs says so."""
    from mmdet_pep_tools.tab2_table import tab2_block

    def run(name, variant, seed, mask, displaced=None):
        metrics = {'coco/segm_mAP': mask, 'coco/segm_crowded_recall50': .5,
                   'coco/segm_duplicates_per_img': 1.5}
        if displaced is not None:
            metrics['coco/segm_displaced_recall50'] = displaced
        return dict(name=name, variant=variant, seed=seed, metrics=metrics,
                    val_metrics={'coco/segm_mAP': mask + .01})

    state = dict(
        runs={'PEP-baseline': [run('PEP-baseline', 'dense', s, .20 + s / 100)
                               for s in (0, 1)],
              'PEP-e2e': [run('PEP-e2e', 'dense', 2, .30)],
              'PEP': [run('PEP', 'demo', 0, .99)]},
        other_runs={'PEP': [run('PEP', 'crowded', 0, .02, .107)]})
    rows = {tuple(line.split(' | ')[:3]): line.split(' | ')[3:]
            for line in tab2_block(state).splitlines()
            if line.startswith('| `')}
    assert len(rows) == 16  # 8 trainings on each of 2 variants
    assert rows[('| `dense`', 'Baseline', 'no mechanism')] == [
        'PEP-baseline', '0, 1', '20.5 ± 0.7', '21.5 ± 0.7', '50.0 ± 0.0', '—',
        '1.50 ± 0.00 |']
    assert rows[('| `dense`', 'PEP', 'end to end (paper)')][:3] == [
        'PEP-e2e', '2', '30.0']
    # PEP's demo run is not a dense row; its crowded run has displaced R.
    assert rows[('| `dense`', 'PEP', 'detached (recipe)')][1] == (
        'not trained yet')
    assert rows[('| `crowded`', 'PEP', 'detached (recipe)')][1:] == [
        '0', '2.0', '3.0', '50.0', '10.7', '1.50 |']
    assert rows[('| `crowded`', '+purifying', 'end to end (paper)')] == [
        'PEP-purify-e2e', 'not trained yet', '—', '—', '—', '—', '— |']
    assert rows[('| `dense`', 'PEP',
                 'purifier end to end, excavator detached')][:2] == [
        'PEP-e2e-purifier', 'not trained yet']


def test_zoo_rows_average_the_variants_every_row_has(tree):
    """PEP has demo and dense runs, SOLOv2 demo only: both rows average
    demo, PEP's dense runs are counted as not averaged (no row mixes a
    harder variant into its mean while another does not)."""
    write_result(result_path(str(tree / 'docs' / 'results'), 'demo',
                             'SOLOv2', 1),
                 _result('SOLOv2', 'demo', 1, .15, .05, .16))
    zoo = render(str(tree), FILES)['README.md'][1]
    rows = {line.split(' | ')[0][2:]: line.split(' | ')
            for line in zoo.splitlines() if line.startswith('| ')}
    # PEP demo: (30 + 32) / 2; crowded (20 + 22) / 2.
    assert rows['**PEP** (recommended)'][3:6] == [
        '31.0 ± 1.4', '21.0 ± 1.4', '2 seeds × 1 variant (demo); '
        '+2 not averaged']
    assert rows['SOLOv2'][3:6] == ['15.0', '5.0', '1 seed × 1 variant (demo)']
    assert 'the mean over the variants every row has runs on (demo;' in zoo


def test_a_peer_row_is_chosen_on_the_variants_both_settings_have():
    from mmdet_pep_tools.tables import chosen_on_val

    def run(name, variant, val):
        return dict(name=name, variant=variant,
                    val_metrics={'coco/segm_mAP': val})

    # The adapted config's dense run (a harder variant) must not pull its
    # mean under the defaults' demo-only one.
    state = dict(runs={
        'SOLOv2': [run('SOLOv2', 'demo', 0.30), run('SOLOv2', 'dense', 0.10)],
        'SOLOv2-mmdet': [run('SOLOv2-mmdet', 'demo', 0.25)],
    })
    assert chosen_on_val(state, ('SOLOv2', 'SOLOv2-mmdet')) == 'SOLOv2'
