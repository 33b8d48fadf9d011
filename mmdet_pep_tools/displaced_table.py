"""The generated table of docs/experiments/displaced.md: every current run
on the ``crowded`` variant, where a fifth of the objects lose their grid
cells, with the displaced instances scored apart (``DisplacedCocoMetric``).
"""
from typing import List

from .results_table import cell, pooled, seed_list

VARIANT = 'crowded'
DISPLACED_AP, DISPLACED_R50, PLACED_R50, DUPLICATES, MASK = (
    'coco/segm_displaced_mAP', 'coco/segm_displaced_recall50',
    'coco/segm_placed_recall50', 'coco/segm_duplicates_per_img',
    'coco/segm_mAP')
#: The paper's Tab. 2 rows first, then the peers.
ORDER = ('PEP-baseline', 'PEP-excavate', 'PEP-purify', 'PEP', 'PEP-e2e')
DASH = '—'


def _models(other_runs: dict) -> List[str]:
    names = [n for n, runs in other_runs.items()
             if any(r['variant'] == VARIANT for r in runs)]
    return sorted(names, key=lambda n: (ORDER.index(n)
                                        if n in ORDER else len(ORDER), n))


def displaced_block(state: dict) -> str:
    """Per model: its options, runs, test mask AP, displaced AP and
    recall@0.5, the others' recall@0.5, duplicates per image, and the val
    mask AP and displaced recall@0.5, mean ± std over seeds."""
    lines = [
        '| model | options | seeds | mask AP | displaced AP | displaced '
        'R@0.5 | placed R@0.5 | dup/img | mask AP (val) | displaced R@0.5 '
        '(val) |', '|:---|:---|' + '---:|' * 8
    ]
    for name in _models(state['other_runs']):
        runs = [r for r in state['other_runs'][name]
                if r['variant'] == VARIANT]
        options = runs[0].get('cfg_options') or {}
        opts = ' '.join(f'`{k.rsplit(".", 1)[-1]}={v}`'
                        for k, v in sorted(options.items())) or DASH
        test = {k: pooled(runs, k).get(VARIANT) for k in (
            MASK, DISPLACED_AP, DISPLACED_R50, PLACED_R50, DUPLICATES)}
        val = {k: pooled(runs, k, 'val_metrics').get(VARIANT)
               for k in (MASK, DISPLACED_R50)}
        lines.append('| ' + ' | '.join([
            name, opts, seed_list(runs),
            cell(test[MASK], 100., DASH), cell(test[DISPLACED_AP], 100., DASH),
            cell(test[DISPLACED_R50], 100., DASH),
            cell(test[PLACED_R50], 100., DASH),
            cell(test[DUPLICATES], 1., DASH),
            cell(val[MASK], 100., DASH), cell(val[DISPLACED_R50], 100., DASH)
        ]) + ' |')
    if len(lines) == 2:
        lines.append('| no current run on `crowded` yet |' + ' |' * 9)
    lines += [
        '', 'The `crowded` variant, held-out test split (200 images) unless '
        'marked val (100 images). AP and recall in % (`DisplacedCocoMetric`'
        '), duplicates per image; displaced: every cell of the instance\'s '
        'centre region owned by a neighbour under the recommended PEP '
        'recipe\'s assignment; placed: all the others. Built by '
        '`tools/analysis_tools/build_tables.py` from the current result '
        'files in [docs/results/crowded/](../results/README.md).'
    ]
    return '\n'.join(lines) + '\n'
