"""The generated trained Tab. 2 of docs/experiments/displaced.md: the
paper's four ablation rows, each its own training, with the mechanisms
trained detached from the base network (the recommended recipe) and end to
end (the paper: their losses reach the base network).

A row's models are named by the protocol: the recipe's Tab. 2 configs
(``PEP-baseline``, ``PEP-excavate``, ``PEP-purify``, ``PEP``) and the same
configs run with ``model.mask_head.detach_excavation=False
model.mask_head.detach_purifier=False`` under the ``-e2e`` names, and PEP
with ``model.mask_head.detach_purifier=False`` alone as
``PEP-e2e-purifier``. The Baseline has no mechanism to detach: one model
for all trainings.
"""
from .displaced_table import DASH, DISPLACED_R50, DUPLICATES, MASK
from .results_table import cell, markdown_row, pooled, seed_list

#: Tab. 2's rows: label, then (how the mechanisms were trained, the model)
#: of each training of that row.
ROWS = (
    ('Baseline', (('no mechanism', 'PEP-baseline'), )),
    ('+excavating', (('detached (recipe)', 'PEP-excavate'),
                     ('end to end (paper)', 'PEP-excavate-e2e'))),
    ('+purifying', (('detached (recipe)', 'PEP-purify'),
                    ('end to end (paper)', 'PEP-purify-e2e'))),
    ('PEP', (('detached (recipe)', 'PEP'), ('end to end (paper)', 'PEP-e2e'),
             ('purifier end to end, excavator detached',
              'PEP-e2e-purifier'))),
)
VARIANTS = ('dense', 'crowded')
CROWDED_R50 = 'coco/segm_crowded_recall50'


def tab2_block(state: dict) -> str:
    """Per variant and Tab. 2 row: its seeds, test mask AP, val mask AP,
    crowded and displaced recall@0.5 and duplicates per image (test), mean
    ± std over seeds; a row without current runs says so."""
    runs = {}
    for source in (state['runs'], state['other_runs']):
        for name, named in source.items():
            runs.setdefault(name, []).extend(named)
    lines = [
        markdown_row([
            'variant', 'Tab. 2 row', 'mechanisms trained', 'model', 'seeds',
            'mask AP', 'mask AP (val)', 'crowded R@0.5', 'displaced R@0.5',
            'dup/img'
        ]), '|:---|:---|:---|:---|' + '---:|' * 6
    ]
    for variant in VARIANTS:
        for label, trainings in ROWS:
            for training, name in trainings:
                done = [r for r in runs.get(name, [])
                        if r['variant'] == variant]
                head = [f'`{variant}`', label, training, name]
                if not done:
                    lines.append(markdown_row(
                        head + ['not trained yet'] + [DASH] * 5))
                    continue
                test = {k: pooled(done, k).get(variant) for k in (
                    MASK, CROWDED_R50, DISPLACED_R50, DUPLICATES)}
                val = pooled(done, MASK, 'val_metrics').get(variant)
                lines.append(markdown_row(head + [
                    seed_list(done),
                    cell(test[MASK], 100., DASH), cell(val, 100., DASH),
                    cell(test[CROWDED_R50], 100., DASH),
                    cell(test[DISPLACED_R50], 100., DASH),
                    cell(test[DUPLICATES], 1., DASH)
                ]))
    lines += [
        '', 'Held-out test split (200 images) unless marked val (100 '
        'images); mask AP and recall in %, mean ± std over the seeds. '
        '"End to end": the same config with `model.mask_head.'
        'detach_excavation=False model.mask_head.detach_purifier=False`; '
        '"purifier end to end": `model.mask_head.detach_purifier=False` '
        'alone. '
        'Displaced recall only where the protocol tests with '
        '`DisplacedCocoMetric` (`crowded`; on `dense` 0.4 % of the test '
        'objects are displaced). Built by '
        '`tools/analysis_tools/build_tables.py` from the current result '
        'files in [docs/results/](../results/README.md).'
    ]
    return '\n'.join(lines) + '\n'
