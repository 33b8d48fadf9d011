"""Helpers of the video metric tests: hand-made clips of two still GT
tracks, and one evaluation of them."""
import numpy as np
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils

from mmdet.structures import DetDataSample, TrackDataSample


def square(y, x, size=8, shape=(32, 32)):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[y:y + size, x:x + size] = 1
    return mask


def clip(pred_masks, pred_scores, pred_ids=None, num_frames=2):
    """Frames of 32 x 32, two still GT tracks of class 0 (ids 1, 2:
    squares at (2, 2) and (20, 20)); ``pred_masks`` (tracks x (32, 32)) are
    predicted in every frame, with ids 0, 1, ... or ``pred_ids[t]``."""
    gts = [square(2, 2), square(20, 20)]
    frames = []
    for t in range(num_frames):
        instances = []
        for track_id, mask in enumerate(gts, 1):
            ys, xs = np.nonzero(mask)
            rle = mask_utils.encode(np.asfortranarray(mask))
            instances.append(
                dict(bbox=[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                     bbox_label=0, instance_id=track_id, ignore_flag=0,
                     mask=rle))
        sample = DetDataSample(
            metainfo=dict(img_id=t + 1, video_id=1, frame_id=t,
                          ori_shape=(32, 32), ori_video_length=num_frames,
                          instances=instances))
        pred = InstanceData()
        pred.masks = torch.from_numpy(np.stack(pred_masks)).bool() \
            if pred_masks else torch.zeros(0, 32, 32, dtype=torch.bool)
        pred.bboxes = torch.zeros(len(pred_masks), 4)
        pred.scores = torch.tensor(pred_scores, dtype=torch.float32)
        pred.labels = torch.zeros(len(pred_masks), dtype=torch.long)
        pred.instances_id = torch.arange(len(pred_masks)) \
            if pred_ids is None else torch.tensor(pred_ids[t])
        sample.pred_track_instances = pred
        frames.append(sample)
    track = TrackDataSample()
    track.video_data_samples = frames
    return track


def evaluate(track, metric='YouTubeVISIDSwitchMetric', **kwargs):
    evaluator = Evaluator(dict(type=metric, **kwargs))
    evaluator.dataset_meta = dict(classes=('disc', 'square', 'triangle'))
    evaluator.process(data_samples=[track], data_batch={})
    return evaluator.evaluate(1)
