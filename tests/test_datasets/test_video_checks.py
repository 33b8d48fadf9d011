"""Bad video input (issue #42 item 6) through the synthetic clips' data
config: a file without videos, a missing frame (in the file or on disk), a
frame of another size (in the file or on disk) fail naming the clip and
the frame; a clip without frames is left out with a warning; a clip
without objects gives empty tracks and a metric, not a crash."""
import copy
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator

from mmdet.registry import DATASETS, TRANSFORMS
from mmdet_pep.datasets import check_video_annotations, video_checks
from mmdet_pep.datasets.synthetic_video import generate_vis_split
from pep_testing import ROOT, built, tiny_sipmask_vis_cfg

DATA_CFG = osp.join(ROOT, 'configs', '_base_', 'datasets', 'synthetic_vis.py')
ANN = 'annotations/youtube_vis_val.json'


@pytest.fixture
def clips(tmp_path):
    """Two clips of 3 frames of 64 px; returns (root, the converted file's
    content)."""
    root = str(tmp_path / 'clips')
    generate_vis_split(root, 'val', 2, num_frames=3, image_size=64, seed=1)
    with open(osp.join(root, ANN)) as f:
        return root, json.load(f)


def write(root, data):
    with open(osp.join(root, ANN), 'w') as f:
        json.dump(data, f)


def dataset(root, split='val'):
    """The data config's loader of ``split`` on ``root``."""
    cfg = Config.fromfile(DATA_CFG)
    ds = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
    ds.update(data_root=root, ann_file=ANN, data_prefix=dict(img_path='val'))
    return DATASETS.build(ds)


def test_the_synthetic_configs_load_checked_data(clips):
    cfg = Config.fromfile(DATA_CFG)
    for split in ('train', 'val'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert ds.type == 'CheckedYouTubeVISDataset'
        loaders = [t.type for t in ds.pipeline[-2].transforms]
        assert loaders[0] == 'CheckedLoadFrameFromFile'
    root, _ = clips
    assert len(dataset(root)) == 2 and len(dataset(root, 'train')) == 2
    clip = dataset(root)[0]['data_samples']
    assert len(clip) == 3


def test_a_file_without_videos_names_the_problem(clips):
    root, data = clips
    del data['videos']
    write(root, data)
    with pytest.raises(ValueError, match="youtube_vis_val.json has no "
                       "'videos': not a YouTube-VIS file"):
        dataset(root)
    # An image (COCO) file: no videos and images without a video.
    for image in data['images']:
        del image['video_id']
    with pytest.raises(ValueError, match='no video_id: an image file'):
        check_video_annotations(data, 'coco.json')
    # The released layout: videos with file_names, no images.
    raw = dict(videos=[dict(id=1, file_names=['a/0.jpg'])], annotations=[])
    with pytest.raises(ValueError, match='as released.*youtubevis2coco'):
        check_video_annotations(raw, 'train.json')


def test_a_missing_or_repeated_frame_in_the_file(clips):
    root, data = clips
    frame = next(im for im in data['images']
                 if im['video_id'] == 2 and im['frame_id'] == 1)
    data['images'].remove(frame)
    write(root, data)
    with pytest.raises(ValueError, match=r"clip 2 \('00002'\) has frames "
                       r'0..2 without frame\(s\) \[1\]'):
        dataset(root)
    data['images'] += [frame, dict(frame, id=99)]
    with pytest.raises(ValueError, match=r"clip 2 \('00002'\) has frames "
                       r'0..2 with frame\(s\) \[1\] twice'):
        check_video_annotations(data, 'val.json')
    data['images'][-1]['video_id'] = 7
    with pytest.raises(ValueError, match="belongs to video 7, which is not "
                       "in 'videos'"):
        check_video_annotations(data, 'val.json')
    data['images'][-1].update(video_id=2, frame_id=None)
    with pytest.raises(ValueError, match=r"clip 2 \('00002'\), image 99 "
                       r"\('00002/00001.png'\) has no integer frame_id"):
        check_video_annotations(data, 'val.json')


def test_a_frame_of_another_size_in_the_file(clips):
    root, data = clips
    frame = next(im for im in data['images']
                 if im['video_id'] == 1 and im['frame_id'] == 2)
    frame['height'] = 48
    write(root, data)
    with pytest.raises(ValueError, match=r"clip 1 \('00001'\), frame 2 "
                       r"\('00001/00002.png'\) is 48 x 64, frame 0 64 x 64"):
        dataset(root)


@pytest.mark.parametrize('split', ['val', 'train'])
def test_a_missing_frame_file_names_the_clip_and_frame(clips, split):
    root, _ = clips
    for t in range(3):  # train samples a key and a reference frame
        if t != 0:
            os.remove(osp.join(root, 'val', '00002', f'{t:05d}.png'))
    ds = dataset(root, split)
    index = 1 if split == 'val' else (1, 1)
    with pytest.raises(FileNotFoundError,
                       match=r"clip 2, frame [12] \('.*00002/0000[12]"
                       r".png'\).*not found"):
        ds[index]


@pytest.mark.parametrize('split', ['val', 'train'])
def test_a_frame_file_of_another_size_names_the_clip_and_frame(clips,
                                                                split):
    """Without the check the clip fails to stack (test) or pairs frames of
    two sizes (train)."""
    root, _ = clips
    for t in (1, 2):
        path = osp.join(root, 'val', '00001', f'{t:05d}.png')
        cv2.imwrite(path, cv2.imread(path)[:48])
    ds = dataset(root, split)
    index = 0 if split == 'val' else (0, 1)
    with pytest.raises(ValueError, match=r"clip 1, frame [12] \('.*00001/"
                       r"0000[12].png'\) is 48 x 64, but its annotation file "
                       'gives the clip 64 x 64'):
        ds[index]


def test_the_frame_loader_cannot_skip_a_frame():
    with pytest.raises(ValueError, match='cannot skip a frame'):
        TRANSFORMS.build(
            dict(type='CheckedLoadFrameFromFile', ignore_empty=True))


def test_a_clip_without_frames_is_left_out_with_a_warning(clips,
                                                         monkeypatch):
    root, data = clips
    data['videos'].append(dict(id=3, name='00003'))
    write(root, data)
    logged = []
    monkeypatch.setattr(video_checks, 'print_log',
                        lambda msg, *args, **kwargs: logged.append(msg))
    assert len(dataset(root)) == 2
    assert logged == [
        f"{osp.join(root, ANN)}: 1 clip(s) without frames left out (no "
        "tracks): clip 3 ('00003')"
    ]


def test_a_clip_without_objects_gives_empty_tracks(clips):
    """Clip 2 has no annotation; nothing is detected (score threshold 1):
    every frame comes out with empty, well-typed tracks, and the YouTube-VIS
    metric over both clips runs (AP 0: clip 1's objects are missed)."""
    root, data = clips
    data['annotations'] = [a for a in data['annotations']
                           if a['video_id'] != 2]
    write(root, data)
    ds = dataset(root)
    model = built(tiny_sipmask_vis_cfg())
    model.eval()
    model.detector.bbox_head.test_cfg.score_thr = 1.
    evaluator = Evaluator(dict(type='YouTubeVISIDSwitchMetric'))
    evaluator.dataset_meta = ds.metainfo
    for index in range(len(ds)):
        batch = pseudo_collate([ds[index]])
        with torch.no_grad():
            (clip, ) = model.test_step(batch)
        for frame in clip:
            tracks = frame.pred_track_instances
            assert len(tracks) == 0 and tracks.bboxes.shape == (0, 4)
            assert tracks.masks.shape == (0, *frame.ori_shape)
        if index == 1:
            assert all(len(f.gt_instances) == 0 for f in clip)
        evaluator.process(data_samples=[clip], data_batch=batch)
    metrics = evaluator.evaluate(len(ds))
    assert metrics['youtube_vis/segm_mAP'] == 0.
    assert metrics['youtube_vis/id_switches'] == 0.
    assert np.isfinite(list(metrics.values())).all()
