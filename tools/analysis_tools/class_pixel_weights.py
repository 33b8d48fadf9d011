"""Per-class foreground weights for SpatialEmbeddings' seed maps from a
COCO-format annotation json, by ENet's rule ``1 / ln(1.02 + p_c)``
(:func:`mmdet_pep.models.losses.enet_class_weights`), p_c the share of all
image pixels that the non-crowd instances of class c cover (the sum of
their ``area`` fields over the sum of the images' ``height x width``;
overlaps count twice).

Prints a table and the ``--cfg-options`` that train with the weights and
the per-class loss (``average_per_class``); ``--out`` writes them as JSON.

Example::

    python tools/analysis_tools/class_pixel_weights.py \\
        data/cityscapes/annotations/instancesonly_filtered_gtFine_train.json
"""
import argparse
import json
import sys
from typing import Dict

from mmdet_pep.models.losses import enet_class_weights


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='ENet class weights 1 / ln(c + p) of the classes of a '
        'COCO-format json, for SpatialEmbLoss.foreground_weight')
    parser.add_argument('ann_file', help='COCO-format annotation json')
    parser.add_argument('--c', type=float, default=1.02,
                        help="ENet's constant c (default 1.02)")
    parser.add_argument('--out', help='write the weights as JSON here')
    return parser.parse_args(argv)


def pixel_fractions(coco: dict, ann_file: str = '<json>') -> Dict[str, float]:
    """Share of all image pixels covered by each category's non-crowd
    instances, in the order of ``categories`` (the dataset's class order).

    Raises:
        ValueError: Naming ``ann_file`` and the field, if ``images``,
            ``categories`` or an annotation's ``area`` / ``category_id`` /
            ``image_id`` is missing or wrong.
    """
    for key in ('images', 'categories', 'annotations'):
        if not isinstance(coco.get(key), list):
            raise ValueError(f'{ann_file}: no "{key}" list')
    total = 0
    for img in coco['images']:
        h, w = img.get('height'), img.get('width')
        if not (isinstance(h, int) and isinstance(w, int) and h > 0
                and w > 0):
            raise ValueError(f'{ann_file}: image {img.get("id")!r} needs '
                             f'positive int "height" and "width", got {h!r} '
                             f'and {w!r}')
        total += h * w
    if not total:
        raise ValueError(f'{ann_file}: no images, so no pixel fractions')
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    image_ids = {img['id'] for img in coco['images']}
    areas = dict.fromkeys(names, 0.)
    for ann in coco['annotations']:
        if ann.get('iscrowd', 0):
            continue
        cat, area = ann.get('category_id'), ann.get('area')
        if cat not in names:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")!r} has '
                             f'"category_id" {cat!r}, not in "categories"')
        if ann.get('image_id') not in image_ids:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")!r} has '
                             f'"image_id" {ann.get("image_id")!r}, not in '
                             '"images"')
        if not isinstance(area, (int, float)) or area < 0:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")!r} needs '
                             f'a non-negative "area", got {area!r}')
        areas[cat] += area
    return {names[cat]: min(area / total, 1.) for cat, area in areas.items()}


def main(argv=None):
    args = parse_args(argv)
    with open(args.ann_file) as f:
        coco = json.load(f)
    fractions = pixel_fractions(coco, args.ann_file)
    weights = enet_class_weights(list(fractions.values()), args.c)
    print(f'| class | pixel share (%) | 1 / ln({args.c} + p) |')
    print('|:---|---:|---:|')
    for (name, p), weight in zip(fractions.items(), weights):
        print(f'| {name} | {100 * p:.3f} | {weight:.2f} |')
    listed = ','.join(f'{w:.2f}' for w in weights)
    print('\n--cfg-options model.mask_head.loss_mask.foreground_weight='
          f'[{listed}] model.mask_head.loss_mask.average_per_class=True')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(
                dict(ann_file=args.ann_file, c=args.c,
                     classes=list(fractions), pixel_fractions=list(
                         fractions.values()), foreground_weight=weights),
                f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
