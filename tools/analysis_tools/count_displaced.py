"""Count the ground-truth instances that PEP's perceiving stage leaves
without a grid cell (issue #39).

An instance is *displaced* when it is in at least one level's scale range
but every cell of its centre region(s) is owned by another instance, and
*unassigned* when it is in no level's range (or its mask vanishes at the
model's input size). The assignment is the config's own head's, on the
masks resized by the config's test-pipeline ``Resize`` and padded to the
data preprocessor's ``pad_size_divisor`` (:mod:`mmdet_pep_tools.displaced`).

Prints the displaced fraction of all instances and of the crowded and the
isolated ones (as CrowdCocoMetric splits them); ``--out`` writes a JSON
with the summary, ``displaced`` (annotation id -> bool, to split recall
and AP by) and every instance's flags (``levels``, ``region_cells``,
``owned_cells``, ``owners``: the annotation ids owning its other cells,
``centre_lost``, ``unassigned``, ``crowded``).

Example::

    python tools/analysis_tools/count_displaced.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        data/synthetic_dense/annotations/instances_test.json \\
        --variant dense --out displaced_dense_test.json
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config

from mmdet_pep_tools.displaced import (displaced_instances, variant_config,
                                       write_displaced)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Count the GT instances that lose every cell of their '
        'centre region under a PEP head\'s target assignment')
    parser.add_argument('config', help='config with a PEPHead-like mask_head')
    parser.add_argument('ann_file', help='COCO-format annotation json')
    parser.add_argument(
        '--variant',
        help='adapt the config to a synthetic data variant (image size, '
        'classes) as the comparison protocol does, e.g. dense')
    parser.add_argument(
        '--crowd-dist',
        type=int,
        default=2,
        help='crowded vs isolated as CrowdCocoMetric\'s crowd_dist (-1: no '
        'split)')
    parser.add_argument(
        '--out', help='write the summary and per-annotation flags here')
    return parser.parse_args(argv)


def summary_lines(summary: dict) -> list:
    """One line for all instances, one for crowded and for isolated."""
    lines = []
    for name in ('all', 'crowded', 'isolated'):
        c = summary if name == 'all' else summary.get(name)
        if c is None:
            continue
        frac = c['displaced_fraction'] or 0.
        lines.append(
            f'{name:<9} {c["instances"]:>7} instances: {c["displaced"]} '
            f'displaced ({100 * frac:.1f} %), {c["unassigned"]} '
            f'unassigned, {c["centre_lost"]} without a centre cell')
    return lines


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config!r} not found')
    crowd_dist = None if args.crowd_dist < 0 else args.crowd_dist
    if args.out:
        result = write_displaced(args.config, args.ann_file, args.out,
                                 args.variant, crowd_dist)
    else:
        cfg = (variant_config(args.config, args.variant)
               if args.variant else Config.fromfile(args.config))
        result = displaced_instances(cfg, args.ann_file, crowd_dist)
    summary = result['summary']
    print(f'{args.ann_file}: {summary["images"]} images')
    print('\n'.join(summary_lines(summary)))
    if args.out:
        print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
