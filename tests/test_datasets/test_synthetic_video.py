"""The synthetic video set: deterministic, consistent in both layouts,
loaded by mmdet's YouTubeVISDataset, with objects that touch, hide and
leave."""
import filecmp
import json
import os.path as osp

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmdet.datasets import YouTubeVISDataset
from mmdet_pep.datasets.synthetic_video import (ensure_vis_dataset,
                                                generate_vis_dataset,
                                                generate_vis_split)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp('vis')
    files = generate_vis_split(str(root), 'train', 4, num_frames=6,
                               image_size=96, seed=3)
    with open(files[0]) as f:
        ytvis = json.load(f)
    with open(files[1]) as f:
        cocovid = json.load(f)
    return root, files, ytvis, cocovid


def test_deterministic_and_prefix_stable(clips, tmp_path):
    root, files, _, _ = clips
    again = generate_vis_split(str(tmp_path), 'train', 4, num_frames=6,
                               image_size=96, seed=3)
    for a, b in zip(files, again):
        assert filecmp.cmp(a, b, shallow=False)
    assert filecmp.cmp(
        osp.join(root, 'train', '00002', '00005.png'),
        osp.join(tmp_path, 'train', '00002', '00005.png'), shallow=False)
    # The first clips do not depend on how many there are.
    fewer = generate_vis_split(str(tmp_path / 'fewer'), 'train', 2,
                               num_frames=6, image_size=96, seed=3)
    with open(fewer[0]) as f:
        two = json.load(f)
    assert two['videos'] == clips[2]['videos'][:2]
    with pytest.raises(ValueError, match='num_frames'):
        generate_vis_split(str(tmp_path), 'x', 1, num_frames=1)


def test_both_layouts_hold_the_same_tracks(clips):
    _, _, ytvis, cocovid = clips
    assert len(ytvis['videos']) == 4
    assert all(v['length'] == 6 and len(v['file_names']) == 6
               for v in ytvis['videos'])
    images = {im['id']: im for im in cocovid['images']}
    per_track = {}
    for ann in cocovid['annotations']:
        image = images[ann['image_id']]
        assert image['video_id'] == ann['video_id']
        per_track.setdefault(ann['instance_id'], {})[image['frame_id']] = ann
    for track in ytvis['annotations']:
        frames = per_track[track['id']]
        assert sorted(frames) == [
            t for t, s in enumerate(track['segmentations']) if s is not None
        ]
        for t, ann in frames.items():
            assert ann['segmentation'] == track['segmentations'][t]
            assert ann['category_id'] == track['category_id']
            assert ann['area'] == track['areas'][t] >= 20


def test_objects_touch_hide_and_leave(clips):
    """Same-class objects of a clip touch (masks within 1 px) in some
    frame, some tracks miss frames (hidden or outside), and no pixel is in
    two masks."""
    _, _, ytvis, _ = clips
    touching = gaps = 0
    for video in ytvis['videos']:
        tracks = [a for a in ytvis['annotations']
                  if a['video_id'] == video['id']]
        gaps += sum(None in t['segmentations'] for t in tracks)
        for t in range(video['length']):
            masks = [(a['category_id'], mask_utils.decode(
                a['segmentations'][t]).astype(bool)) for a in tracks
                     if a['segmentations'][t] is not None]
            total = sum(m.astype(int) for _, m in masks)
            assert total.max() <= 1
            for i, (ci, mi) in enumerate(masks):
                grown = np.zeros_like(mi)
                ys, xs = np.nonzero(mi)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        grown[np.clip(ys + dy, 0, 95),
                              np.clip(xs + dx, 0, 95)] = True
                touching += sum(ci == cj and (grown & mj).any()
                                for cj, mj in masks[i + 1:])
    assert touching > 0 and gaps > 0


def test_loads_in_mmdet_youtube_vis_dataset(clips):
    root, _, ytvis, cocovid = clips
    dataset = YouTubeVISDataset(
        dataset_version='2019',
        data_root=str(root),
        ann_file='annotations/youtube_vis_train.json',
        data_prefix=dict(img_path='train'),
        metainfo=dict(classes=('disc', 'square', 'triangle')),
        pipeline=[])
    assert len(dataset) == 4
    assert dataset.metainfo['classes'] == ('disc', 'square', 'triangle')
    video = dataset.get_data_info(0)
    assert video['video_length'] == 6
    frame = video['images'][0]
    assert osp.isfile(frame['img_path'])
    ids = {i['instance_id'] for im in video['images'] for i in im['instances']}
    assert ids == {a['id'] for a in ytvis['annotations']
                   if a['video_id'] == 1}


def test_ensure_generates_only_what_is_missing(tmp_path):
    out = str(tmp_path / 'vis')
    kwargs = dict(num_train=2, num_val=1, num_frames=2, image_size=32,
                  num_test=1)
    assert ensure_vis_dataset(out, **kwargs)
    ann = tmp_path / 'vis' / 'annotations' / 'youtube_vis_val.json'
    stamp = ann.stat().st_mtime_ns
    # All three splits there: nothing is written again.
    assert not ensure_vis_dataset(out, **kwargs)
    assert ann.stat().st_mtime_ns == stamp
    # One split missing: the set is made again.
    ann.unlink()
    assert ensure_vis_dataset(out, **kwargs) and ann.is_file()
    test = tmp_path / 'vis' / 'annotations' / 'youtube_vis_test.json'
    test.unlink()
    assert ensure_vis_dataset(out, **kwargs) and test.is_file()


def test_the_three_splits_share_no_clip(tmp_path):
    files = generate_vis_dataset(str(tmp_path), num_train=2, num_val=2,
                                 num_frames=2, image_size=32, num_test=2)
    assert sorted(files) == ['test', 'train', 'val']
    first_frames = {}
    for split, (ytvis, _) in files.items():
        with open(ytvis) as f:
            first_frames[split] = {
                tuple(v['file_names']) for v in json.load(f)['videos']}
    pixels = {
        split: {open(osp.join(str(tmp_path), split, names[0]),
                     'rb').read() for names in clips}
        for split, clips in first_frames.items()}
    assert not pixels['train'] & pixels['val']
    assert not pixels['train'] & pixels['test']
    assert not pixels['val'] & pixels['test']
