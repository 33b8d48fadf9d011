"""The data of the protocol's synthetic variants: where each lives, and
generating it (with the displaced flags where the protocol scores them).
"""
import os.path as osp

from mmengine.logging import print_log

from mmdet_pep.datasets.synthetic import VARIANTS, generate_dataset
from . import ROOT
from .displaced import displaced_file, write_displaced


def variant_data_root(data_dir: str, variant: str) -> str:
    """``<data_dir>/synthetic/`` for ``demo``, else
    ``<data_dir>/synthetic_<variant>/``."""
    folder = 'synthetic' if variant == 'demo' else f'synthetic_{variant}'
    return osp.join(data_dir, folder) + '/'


#: Variants whose runs are tested with ``DisplacedCocoMetric``: AP and
#: recall@0.5 of the *displaced* instances (every cell of their centre
#: region owned by a neighbour) apart from the others. On ``demo`` and
#: ``dense`` fewer than 0.5 % of the instances are displaced
#: (docs/experiments/displaced.md), too few for an AP of their own.
DISPLACED_VARIANTS = ('crowded', )
#: Whose target assignment decides which instances are displaced, for
#: every model alike: the recommended PEP recipe's (adapted to the variant
#: as :func:`protocol_cfg` adapts every config).
DISPLACED_REFERENCE = 'configs/pep/pep_r18_fpn_1200it_synthetic.py'


def ensure_variant_data(data_root: str, variant: str) -> None:
    """Generate the variant's data set (800 train, 100 val, 200 held-out
    test images) unless its three annotation files exist; for the
    :data:`DISPLACED_VARIANTS`, also the displaced flags of val and test
    (:func:`displaced_file`, as ``count_displaced.py --out`` writes them
    for :data:`DISPLACED_REFERENCE`)."""
    anns = {
        split: osp.join(data_root, 'annotations', f'instances_{split}.json')
        for split in ('train', 'val', 'test')
    }
    if not all(osp.isfile(ann) for ann in anns.values()):
        print_log(f'[compare] generating the {variant!r} data set in '
                  f'{data_root}: {VARIANTS[variant]}')
        generate_dataset(data_root, **VARIANTS[variant])
    if variant not in DISPLACED_VARIANTS:
        return
    for split in ('val', 'test'):
        out = displaced_file(anns[split])
        if not osp.isfile(out):
            print_log(f'[compare] counting the displaced instances of '
                      f'{anns[split]} -> {out}')
            write_displaced(
                osp.join(ROOT, DISPLACED_REFERENCE), anns[split], out,
                variant=variant)
