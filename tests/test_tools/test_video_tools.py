"""The video data tools: make_synthetic_vis.py and split_youtubevis.py."""
import json
import os.path as osp

import pytest
from pep_testing import load_tool


@pytest.fixture(scope='module')
def video_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vis'))
    load_tool('dataset_converters/make_synthetic_vis').main([
        root, '--num-train', '5', '--num-val', '2', '--num-test', '4',
        '--num-frames', '3', '--image-size', '64'
    ])
    return root


def test_make_synthetic_vis_writes_three_splits(video_set):
    for split, count in (('train', 5), ('val', 2), ('test', 4)):
        with open(osp.join(video_set, 'annotations',
                           f'youtube_vis_{split}.json')) as f:
            data = json.load(f)
        assert len(data['videos']) == count
        assert len(data['images']) == 3 * count
        assert osp.isfile(osp.join(video_set, split,
                                   data['images'][0]['file_name']))


def test_split_by_video(video_set, tmp_path):
    split = load_tool('dataset_converters/split_youtubevis').split
    ann = osp.join(video_set, 'annotations', 'youtube_vis_train.json')
    with open(ann) as f:
        full = json.load(f)
    copy = str(tmp_path / 'train.json')
    with open(copy, 'w') as f:
        json.dump(full, f)
    sub_path, val_path = split(copy, 2)
    with open(sub_path) as f:
        sub = json.load(f)
    with open(val_path) as f:
        val = json.load(f)
    # Videos 2 and 4 of 5 are the val part.
    assert [v['id'] for v in val['videos']] == [2, 4]
    assert [v['id'] for v in sub['videos']] == [1, 3, 5]
    for key in ('images', 'annotations'):
        assert len(sub[key]) + len(val[key]) == len(full[key])
        assert {x['video_id'] for x in val[key]} <= {2, 4}
        assert {x['video_id'] for x in sub[key]} <= {1, 3, 5}
    assert sub['categories'] == val['categories'] == full['categories']
    with pytest.raises(ValueError, match='fewer than 9 videos'):
        split(copy, 9)
    with pytest.raises(ValueError, match='every'):
        split(copy, 1)
    bad = str(tmp_path / 'bad.json')
    with open(bad, 'w') as f:
        json.dump(dict(videos=[]), f)
    with pytest.raises(ValueError, match='no "images"'):
        split(bad, 2)
    with open(bad, 'w') as f:
        json.dump(dict(images=[], annotations=[], categories=[]), f)
    with pytest.raises(ValueError, match='bad.json has no "videos"'):
        split(bad, 2)
