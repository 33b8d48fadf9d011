"""Split a YouTube-VIS annotation file (mmdet's converted layout, e.g.
``youtube_vis_2019_train.json``) into a train part and a local val part by
video, for local AP (YouTube-VIS' own val/test ground truth is private).

Every ``--every``-th video (1-based: videos every, 2 every, ...) goes to
``<name>_val.json``, the others to ``<name>_sub.json``, both next to the
input. Deterministic; frames stay where they are (the same image folder).

Example::

    python tools/dataset_converters/split_youtubevis.py \\
        data/youtube_vis_2019/annotations/youtube_vis_2019_train.json --every 10
"""
import argparse
import json
import os.path as osp
from typing import Tuple


def split(ann_file: str, every: int) -> Tuple[str, str]:
    """Write the two parts; returns their paths (sub, val)."""
    if every < 2:
        raise ValueError(f'--every must be >= 2, got {every}')
    with open(ann_file) as f:
        data = json.load(f)
    for key in ('videos', 'images', 'annotations', 'categories'):
        if key not in data:
            raise ValueError(f'{ann_file} has no "{key}": give the file '
                             "mmdet's youtubevis2coco.py writes")
    videos = sorted(data['videos'], key=lambda v: v['id'])
    val_ids = {v['id'] for i, v in enumerate(videos, 1) if i % every == 0}
    if not val_ids:
        raise ValueError(f'{ann_file}: fewer than {every} videos, no val '
                         'part')
    stem = osp.splitext(ann_file)[0]
    out = []
    for suffix, keep in (('sub', lambda vid: vid not in val_ids),
                         ('val', lambda vid: vid in val_ids)):
        part = dict(
            data,
            videos=[v for v in videos if keep(v['id'])],
            images=[im for im in data['images'] if keep(im['video_id'])],
            annotations=[
                a for a in data['annotations'] if keep(a['video_id'])
            ])
        path = f'{stem}_{suffix}.json'
        with open(path, 'w') as f:
            json.dump(part, f)
        out.append(path)
    return tuple(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ann_file', help="mmdet's YouTube-VIS json")
    parser.add_argument('--every', type=int, default=10,
                        help='every n-th video goes to the val part')
    args = parser.parse_args(argv)
    for path in split(args.ann_file, args.every):
        print(path)


if __name__ == '__main__':
    main()
