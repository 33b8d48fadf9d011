"""SipMaskVIS end to end on tiny clips: the image model's losses plus the
matching loss, per-frame predictions with track ids, empty frames, and
clear errors for the wrong detector or input layout, a clip without
frames."""
import pytest
import torch

from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmdet.testing import demo_track_inputs
from pep_testing import built, tiny_detector_cfg, tiny_sipmask_vis_cfg


def train_batch(model, num_items):
    packed = demo_track_inputs(
        batch_size=len(num_items), num_frames=2, key_frames_inds=[0],
        image_shapes=(3, 64, 64), num_items=num_items, num_classes=3,
        with_mask=True)
    return model.data_preprocessor(packed, True)


def test_losses_reach_every_parameter():
    model = built(tiny_sipmask_vis_cfg())
    with torch.no_grad():  # boxes with an area, so masks and tracks train
        model.detector.bbox_head.conv_reg.bias.fill_(2.)
    losses = model(**train_batch(model, [3, 2]), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness',
                           'loss_mask', 'loss_match'}
    assert losses['loss_match'] > 0
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)


def test_key_samples_are_the_mask_losss_positives():
    """The track loss's key samples are the detector's usable positives:
    inside their GT's box centre region, each with a valid GT index."""
    model = built(tiny_sipmask_vis_cfg())
    with torch.no_grad():
        model.detector.bbox_head.conv_reg.bias.fill_(2.)
    data = train_batch(model, [3])
    keys = [s.get_key_frames()[0] for s in data['data_samples']]
    x = model.detector.extract_feat(data['inputs'][:, 0])
    outs = model.detector.bbox_head(x)
    boxes, gt_inds = model.key_samples(outs, [k.gt_instances for k in keys])
    assert len(boxes[0]) == len(gt_inds[0]) > 0
    assert gt_inds[0].max() < 3 and boxes[0].shape[1] == 4
    assert not boxes[0].requires_grad


def test_predicts_every_frame_with_track_ids_and_empty_frames():
    model = built(tiny_sipmask_vis_cfg())
    model.eval()
    head = model.detector.bbox_head
    head.test_cfg.score_thr = 0.
    with torch.no_grad():
        head.conv_reg.bias.fill_(2.)
    packed = demo_track_inputs(
        batch_size=1, num_frames=3, image_shapes=(3, 64, 64), num_items=[2],
        num_classes=3, with_mask=True)
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        (clip, ) = model(**data, mode='predict')
    assert len(clip) == 3
    first = clip[0].pred_track_instances
    assert first.instances_id.tolist() == list(range(len(first)))
    for frame in clip:
        track = frame.pred_track_instances
        assert track.masks.shape[1:] == frame.ori_shape
        assert track.instances_id.dtype == torch.long
        assert len(track) == len(track.bboxes) > 0
    # Nothing above the threshold: empty, well-typed frames.
    head.test_cfg.score_thr = 1.
    with torch.no_grad():
        (clip, ) = model(**data, mode='predict')
    for frame in clip:
        track = frame.pred_track_instances
        assert len(track) == 0 and track.bboxes.shape == (0, 4)
        assert track.masks.shape == (0, *frame.ori_shape)


def test_clear_errors():
    cfg = tiny_sipmask_vis_cfg()
    cfg['detector'] = tiny_detector_cfg()
    with pytest.raises(TypeError, match='SipMask detector'):
        MODELS.build(cfg)
    model = built(tiny_sipmask_vis_cfg())
    data = train_batch(model, [2])
    with pytest.raises(ValueError, match='one key and one reference'):
        model.loss(data['inputs'][:, :1], data['data_samples'])


def test_a_clip_without_frames_gives_no_tracks():
    """A clip of no frames (T = 0) comes back as it came, with no tracks,
    instead of failing on its first frame."""
    model = built(tiny_sipmask_vis_cfg())
    model.eval()
    empty = TrackDataSample()
    with torch.no_grad():
        (clip, ) = model.predict(torch.zeros(1, 0, 3, 64, 64), [empty])
    assert clip is empty and len(clip) == 0
