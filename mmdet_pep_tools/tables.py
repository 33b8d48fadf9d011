"""What every generated table shows, built from the committed result files.

One place for the specs of the numbers in ``README.md``,
``configs/*/README.md``, ``configs/*/metafile.yml`` and the results
folders' pages (``tools/analysis_tools/build_tables.py`` writes and checks
them, :mod:`.blocks` puts them into the files):

- :data:`TABLES`: the ``<!-- results:NAME -->`` blocks, by name;
- :data:`PAGES`: the whole generated pages of the results folders;
- the ``Metrics`` of the synthetic configs' metafile entries
  (:func:`.blocks.metafile_results`).

A run counts when it is current as the protocol judges it
(:func:`.protocol.judge_results`, with ``compare.py``'s defaults) and was
tested on the held-out test split; its val numbers (``val_metrics``) are
shown next to them, for they are what recipes are chosen on.
"""
import os.path as osp
from typing import List

from mmdet_pep.datasets.synthetic import VARIANTS
from . import protocol, vis_protocol
from .deploy_table import deploy_block, ort_cell
from .displaced_table import displaced_block
from .tab2_table import tab2_block
from .results import load_results
from .results_table import (archive_markdown, cell, markdown_row, pooled,
                            run_count)
from .specs import DEFAULT_CONFIGS
from .table_state import (RESULTS_DIR, ZOO_VARIANTS, default_specs,
                          protocol_args)

ARCHIVE_DIR = 'docs/experiments/results'
DATASET = 'Synthetic crowded shapes (held-out test)'
MASK, CROWDED, BOX = ('coco/segm_mAP', 'coco/segm_crowded_mAP',
                      'coco/bbox_mAP')
NO_RUNS, DASH = 'no held-out runs yet', '—'

# The zoo table: label, the protocol model(s) of the row, paper. Where a
# row has several models (a peer at this zoo's adapted settings and at
# mmdet's defaults), it shows the one with the higher val mask AP.
ZOO = (
    ('**PEP** (recommended)', 'PEP', 'https://arxiv.org/abs/2304.08826'),
    ('SOLOv2', ('SOLOv2', 'SOLOv2-mmdet'),
     'https://arxiv.org/abs/2003.10152'),
    ('CondInst', ('CondInst', 'CondInst-mmdet'),
     'https://arxiv.org/abs/2003.05664'),
    ('EmbedMask', 'EmbedMask', 'https://arxiv.org/abs/1912.01954'),
    ('SipMask', 'SipMask', 'https://arxiv.org/abs/2007.14772'),
    ('SpatialEmbeddings', 'SpatialEmbeddings',
     'https://arxiv.org/abs/1906.11109'),
)
# The blocks: file, and which rows. A method block has a row group for
# every default model of its config folder and every other model with
# current runs whose config lies there.
TABLES = {
    'zoo': dict(file='README.md', kind='zoo'),
    'demo': dict(file='README.md', kind='demo'),
    'vis': dict(file='README.md', kind='vis'),
    'deploy': dict(file='docs/deploy.md', kind='deploy'),
    'displaced': dict(file='docs/experiments/displaced.md',
                      kind='displaced'),
    'tab2': dict(file='docs/experiments/displaced.md', kind='tab2'),
    **{
        name: dict(file=f'configs/{name}/README.md', kind='method')
        for name in ('pep', 'solov2', 'condinst', 'embedmask', 'sipmask',
                     'spatial_embeddings')
    },
}
_VAL_INTRO = (
    'Tested on the **val split** (the 100 val images of each variant, on '
    'which the recipes were also chosen; `test_dataloader` was the val '
    'loader then), before the held-out test split existed. The configs and '
    'code behind many runs have changed or are gone, so the runs are not '
    'judged for currency: each row group is one model at one code commit '
    '(`code`), every run counts. The held-out results are in '
    '[docs/results/](../../../results/README.md).')
PAGES = {
    f'{RESULTS_DIR}/README.md': dict(kind='results'),
    f'{vis_protocol.RESULTS_DIR}/README.md': dict(kind='vis'),
    f'{ARCHIVE_DIR}/val_1200it/README.md': dict(
        kind='archive',
        title='Old protocol on the val split: 1200 iterations (archive)',
        intro=_VAL_INTRO),
    f'{ARCHIVE_DIR}/screen_600it/README.md': dict(
        kind='archive',
        title='Old protocol on the val split: 600-iteration screens '
        '(archive)',
        intro=_VAL_INTRO + ' These screens ran with `--max-iters 600`.'),
}


def link(config: str, source: str) -> str:
    """A Markdown link to ``config`` (from the repository root) from the
    file ``source``."""
    rel = osp.relpath(config, osp.dirname(source) or '.')
    if not rel.startswith('.'):
        rel = f'./{rel}' if osp.dirname(source) else rel
    return f'[{osp.basename(config)}]({rel})'


def shared_variants(run_lists) -> List[str]:
    """The :data:`ZOO_VARIANTS` that every non-empty list of runs has
    (all of them when no list has runs)."""
    lists = [runs for runs in run_lists if runs]
    return [
        v for v in ZOO_VARIANTS
        if all(any(r['variant'] == v for r in runs) for runs in lists)
    ]


def chosen_on_val(state: dict, names) -> str:
    """Of a zoo row's models, the one with the higher val mask AP (the
    mean over the variants that all of them have runs on, so that both are
    judged on the same data), or the first when none has runs. Recipes and
    peer settings are chosen on val, never on test."""
    if isinstance(names, str):
        return names
    lists = [state['runs'].get(n, []) for n in names]
    shared = shared_variants(lists) or list(ZOO_VARIANTS)
    scored = [(pooled([r for r in runs if r['variant'] in shared], MASK,
                      'val_metrics').get('all', (float('-inf'), ))[0], -i, n)
              for i, (n, runs) in enumerate(zip(names, lists))]
    return max(scored)[2]


def zoo_block(state: dict, source: str) -> str:
    """The README's zoo table: one row per method."""
    lines = [
        markdown_row(['Method', 'Paper', 'Config', 'mask AP (test)',
              'crowded AP (test)', 'runs', 'latency (ms)',
              'ONNX Runtime (ms)']),
        '|' + '|'.join([':---'] * 3 + ['---:'] * 5) + '|'
    ]
    machines = []
    chosen = [(label, chosen_on_val(state, names), paper)
              for label, names, paper in ZOO]
    # Every row averages the same data variants: those all rows have.
    shared = shared_variants(
        [state['runs'].get(name, []) for _, name, _ in chosen])
    for label, name, paper in chosen:
        all_runs = state['runs'].get(name, [])
        runs = [r for r in all_runs if r['variant'] in shared]
        config = state['configs'].get(name) or dict(DEFAULT_CONFIGS)[name]
        mask = pooled(runs, MASK).get('all')
        crowded = pooled(runs, CROWDED).get('all')
        count = run_count(runs) if runs else NO_RUNS
        if len(all_runs) > len(runs):
            count += f'; +{len(all_runs) - len(runs)} not averaged'
        lat = state['latency'].get(name)
        if lat:
            machine = (f'{lat["device_name"]} ({lat["device"]}, '
                       f'{lat["threads"]} threads')
            if lat.get('floor_ms'):
                machine += f', floor {lat["floor_ms"]:.1f} ms'
            machine += ')'
            machines.append(f'{name}: {machine}')
        paper_id = paper.rsplit('/', 1)[1]
        lines.append(markdown_row([
            label, f'[arXiv {paper_id}]({paper})',
            link(config, source),
            cell(mask, 100., DASH), cell(crowded, 100., DASH),
            count,
            f'{lat["latency"]["median_ms"]:.1f}' if lat else f'{DASH}¹',
            ort_cell(state['deploy'].get(name))
        ]))
    lines += [
        '', 'mask AP and crowded mask AP (%, `CrowdCocoMetric`; crowded: '
        'within 2 px of a same-class instance) on the held-out test split '
        'of the embedded synthetic set (200 images per data variant, '
        f'`demo` and `dense`): the mean over the variants every row has runs '
        f'on ({", ".join(shared)}; a row\'s other runs are "not averaged" '
        'here and shown per variant in its config README) of the mean over '
        'seeds ± the pooled seed std. Built by '
        '`tools/analysis_tools/build_tables.py` from the current result '
        'files in [docs/results/]('
        f'{osp.relpath(RESULTS_DIR, osp.dirname(source) or ".")}'
        '/README.md). SOLOv2 and CondInst each have two configs, this '
        "zoo's adaptation to 128 px and mmdet's default level ranges and "
        '`test_cfg` (`*_mmdet-defaults_*`); the row shows the one with the '
        'higher val mask AP.'
    ]
    lines += [
        '', 'ONNX Runtime: median per image of the exported graph '
        '(post-processing included) at the training size, and its ratio to '
        'PyTorch timed round-robin in the same process on the same '
        'checkpoint ([docs/deploy.md](' +
        osp.relpath('docs/deploy.md', osp.dirname(source) or '.') +
        '), `tools/deploy/evaluate_onnx.py`).'
    ]
    if machines:
        lines += ['', 'latency: median per image at batch 1 (' +
                  '; '.join(machines) + '). The floor is the same '
                  "model's backbone and neck alone: files measured in "
                  'sessions on slower machines show a higher floor, so '
                  'compare latencies of equal floors only.']
    if len(machines) < len(ZOO):
        lines += ['', '¹ not measured.']
    return '\n'.join(lines) + '\n'


def method_models(state: dict, folder: str) -> List[str]:
    """The models of a method block: the defaults of ``folder``, then the
    others with current runs whose config lies there."""
    names = [n for n, p in DEFAULT_CONFIGS if osp.dirname(p) == folder]
    names += sorted(
        n for n, runs in state['runs'].items()
        if n not in names and osp.dirname(state['configs'][n]) == folder)
    return names


def options_note(runs: List[dict], variant: str) -> str:
    """The ``--cfg-options`` of a row's runs (an evaluation-only or screen
    variant of the config), as `` with `k=v ...` ``; '' without options.

    Options can differ per data variant (e.g. class weights computed from
    each variant's training set), so a variant's row names its own runs'
    options, and an ``all`` row over different ones refers to them.
    """
    texts = []
    for r in runs:
        options = r.get('cfg_options')
        if options and variant in ('all', r.get('variant')):
            text = ' '.join(f'{k}={v}' for k, v in sorted(options.items()))
            if text not in texts:
                texts.append(text)
    if len(texts) > 1:
        return " with each variant's `--cfg-options` (rows above)"
    return ''.join(' with `' + t + '`' for t in texts)


def method_block(state: dict, source: str, folder: str) -> str:
    """A config README's table: per model and data variant, the test mask
    and crowded AP and the val mask AP."""
    lines = [
        markdown_row(['Model', 'Config', 'Data', 'runs', 'mask AP (test)',
              'crowded AP (test)', 'mask AP (val)']),
        '|' + '|'.join([':---'] * 3 + ['---:'] * 4) + '|'
    ]
    for name in method_models(state, folder):
        runs = state['runs'].get(name, [])
        config = link(
            state['configs'].get(name) or dict(DEFAULT_CONFIGS)[name], source)
        if not runs:
            lines.append(markdown_row([name, config, DASH, NO_RUNS] + [DASH] * 3))
            continue
        test, crowded = pooled(runs, MASK), pooled(runs, CROWDED)
        val = pooled(runs, MASK, 'val_metrics')
        variants = [v for v in VARIANTS if v in test]
        for variant in variants + (['all'] if len(variants) > 1 else []):
            lines.append(markdown_row([
                name, config + options_note(runs, variant), variant,
                str(test[variant][2]),
                cell(test.get(variant), 100., DASH),
                cell(crowded.get(variant), 100., DASH),
                cell(val.get(variant), 100., DASH)
            ]))
    results = osp.relpath(RESULTS_DIR, osp.dirname(source) or '.')
    lines += [
        '', 'AP in % (`CrowdCocoMetric`). test: the held-out test split '
        '(200 images per data variant), which reports the recipes; val: '
        'the val split (100 images), on which they are chosen. Mean ± '
        'sample std over seeds; `all`: the mean over the variants, with '
        'the pooled seed std. Built by `tools/analysis_tools/'
        'build_tables.py` from the current result files in '
        f'[docs/results/]({results}/README.md).'
    ]
    return '\n'.join(lines) + '\n'


def demo_block(state: dict) -> str:
    """What ``make demo`` gives: it trains the recommended recipe on
    ``demo`` with seed 0, so its numbers are that run's result file."""
    run = next((r for r in state['runs'].get('PEP', [])
                if r['variant'] == 'demo' and r['seed'] == 0), None)
    if run is None:
        return ('`make demo` trains the config, data and seed of the seed-0 '
                '`demo` run of the table '
                'below, which has no current result file yet.\n')
    minutes = run.get('train_minutes')
    took = (f', whose training took {minutes:.0f} min on '
            f'{run["machine"]}' if minutes else '')
    return (f'`make demo` trains the config, data and seed of the seed-0 '
            f'`demo` run of the table '
            f'below (`docs/results/demo/PEP/seed0.json`{took}): mask AP '
            f'{run["metrics"][MASK] * 100:.1f} and box AP '
            f'{run["metrics"][BOX] * 100:.1f} on the held-out test split.\n')


def block(name: str, state: dict) -> str:
    """The content of the block ``name`` of :data:`TABLES`."""
    spec = TABLES[name]
    if spec['kind'] == 'zoo':
        return zoo_block(state, spec['file'])
    if spec['kind'] == 'demo':
        return demo_block(state)
    if spec['kind'] == 'deploy':
        return deploy_block(state)
    if spec['kind'] == 'displaced':
        return displaced_block(state)
    if spec['kind'] == 'tab2':
        return tab2_block(state)
    if spec['kind'] == 'vis':
        return vis_protocol.readme_block(state['vis'])
    return method_block(state, spec['file'], f'configs/{name}')


def page(path: str, state: dict, root: str) -> str:
    """The text of a generated page of :data:`PAGES` (``path`` from the
    repository root)."""
    spec = PAGES[path]
    if spec['kind'] == 'results':
        return protocol.results_table(default_specs(), protocol_args(root),
                                      state['fingerprints'])
    if spec['kind'] == 'vis':
        return vis_protocol.page(state['vis'])
    results = load_results(osp.join(root, osp.dirname(path)))
    variants = [
        v for v in VARIANTS if any(r['variant'] == v for r in results)
    ]
    return archive_markdown(results, spec['title'], spec['intro'], variants)
