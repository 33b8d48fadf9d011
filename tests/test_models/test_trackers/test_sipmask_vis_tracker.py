"""SipMaskVISTracker: the official SipMask-VIS memory (never forgets, a
track keeps its first label, one entry per track) and mmdet's rules behind
its switches, on a track head whose embeddings the test sets frame by
frame."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

# Two places on a 64 x 64 frame: cells (1, 1) and (5, 5) of the stride-8
# track map.
HERE = [8., 8., 16., 16.]
THERE = [40., 40., 48., 48.]


class Scene:
    """A track head whose map (1, 4, 8, 8) the test writes before each
    frame: ``embed[cell] = vector``."""

    def __init__(self):
        self.map = torch.zeros(1, 4, 8, 8)
        head = MODELS.build(
            dict(type='SipMaskTrackHead', in_channels=8, feat_channels=8,
                 embed_channels=4,
                 norm_cfg=dict(type='GN', num_groups=2, requires_grad=True)))
        head.forward = lambda feats: self.map
        self.model = SimpleNamespace(track_head=head)

    def frame(self, tracker, frame_id, dets):
        """Track ``dets``: (box, label, embedding or None for zeros)."""
        self.map.zero_()
        for box, _, embedding in dets:
            if embedding is not None:
                cy, cx = int((box[1] + box[3]) / 16), int((box[0] + box[2]) /
                                                          16)
                self.map[0, :, cy, cx] = torch.tensor(embedding)
        sample = DetDataSample(
            metainfo=dict(frame_id=frame_id, scale_factor=(1., 1.),
                          img_shape=(64, 64), ori_shape=(64, 64)))
        inst = InstanceData()
        inst.bboxes = torch.tensor([d[0] for d in dets],
                                   dtype=torch.float32).reshape(-1, 4)
        inst.labels = torch.tensor([d[1] for d in dets], dtype=torch.long)
        inst.scores = torch.full((len(dets), ), 0.9)
        inst.masks = torch.zeros(len(dets), 64, 64, dtype=torch.bool)
        sample.pred_instances = inst
        return tracker.track(model=self.model, feats=None,
                             data_sample=sample).instances_id.tolist()


def tracker(**kwargs):
    return MODELS.build(dict(type='SipMaskVISTracker', **kwargs))


STRONG = [3., 0., 0., 3.]
OTHER = [-3., 0., 0., -3.]


@pytest.mark.parametrize('retain,reappears_as', [(None, 0), (20, 2)])
def test_never_forgets_by_default(retain, reappears_as):
    """An object seen at frame 0, hidden for 25 frames while another object
    is tracked, then seen again: the official memory gives it its id back;
    mmdet's forgetting after 20 frames (the switch) a new one."""
    scene, t = Scene(), tracker(num_frames_retain=retain)
    assert scene.frame(t, 0, [(HERE, 0, STRONG)]) == [0]
    for frame_id in range(1, 26):
        assert scene.frame(t, frame_id, [(THERE, 1, OTHER)]) == [1]
    assert scene.frame(t, 26, [(HERE, 0, STRONG)]) == [reappears_as]


@pytest.mark.parametrize('label_memory,ids', [('first', [0, 0, 0]),
                                              ('last', [0, 0, 1])])
def test_a_track_keeps_its_first_label(label_memory, ids):
    """Frame 1 matches the track with another label (a strong embedding
    match); frame 2's detection, with the first label and no embedding
    evidence, is decided by the label bonus: log(1/2) + 2 IoU + 10 against
    log(1/2) + 10 for "new" when the track kept its first label (official),
    log(1/2) + 2 against log(1/2) + 10 when it took the last (mmdet's)."""
    scene, t = Scene(), tracker(label_memory=label_memory)
    got = [
        scene.frame(t, 0, [(HERE, 0, STRONG)])[0],
        scene.frame(t, 1, [(HERE, 1, STRONG)])[0],
        scene.frame(t, 2, [(HERE, 0, None)])[0]
    ]
    assert got == ids


def test_one_entry_per_track_and_empty_frames():
    """The memory holds each track's latest entry only; a frame without
    detections changes nothing; a new clip (frame 0 after reset) starts
    from id 0."""
    scene, t = Scene(), tracker()
    for frame_id in range(3):
        scene.frame(t, frame_id, [(HERE, 0, STRONG), (THERE, 1, OTHER)])
    assert scene.frame(t, 3, []) == []
    assert set(t.tracks) == {0, 1}
    for track in t.tracks.values():
        assert all(len(entries) == 1 for entries in track.values())
        assert track['frame_ids'][0].item() == 2
    t.reset()
    assert scene.frame(t, 0, [(THERE, 1, OTHER)]) == [0]


def tracker_with_tracks(assignment, ids=(5, 7)):
    """A tracker whose memory holds tracks ``ids`` (match columns 1, 2)."""
    t = tracker(assignment=assignment)
    t.tracks = {i: {} for i in ids}
    t.num_tracks = max(ids) + 1
    return t


# Columns: new object, track 5, track 7.
TWO_WANT_ONE = torch.tensor([[1.0, 3.0, 0.5],
                             [0.0, 4.0, 2.0]])


@pytest.mark.parametrize('assignment,ids,best', [
    # mmdet's and the official rule: both take track 5; the later, higher
    # score wins it, the earlier keeps the id too (duplicate).
    ('official', [5, 5], [4.0, -1e6]),
    # One to one: det 1 (4.0) takes track 5; det 0 falls back to its next
    # choice, a new object (1.0 > 0.5), id 8.
    ('unique', [8, 5], [4.0, -1e6]),
])
def test_two_detections_that_want_one_track(assignment, ids, best):
    t = tracker_with_tracks(assignment)
    got, best_scores = t.assign_ids(TWO_WANT_ONE.clone())
    assert got.tolist() == ids
    assert best_scores.tolist() == best
    assert t.num_tracks == (9 if assignment == 'unique' else 8)


def test_a_later_loser_is_dropped_officially_and_kept_when_unique():
    """Det 1 loses track 5 to the earlier det 0 (3.0 < 4.0): the official
    rule gives it no id (-1, dropped from the output); one to one it takes
    its next choice, track 7."""
    scores = torch.tensor([[0.0, 4.0, 0.5], [0.5, 3.0, 2.0]])
    official, _ = tracker_with_tracks('official').assign_ids(scores.clone())
    assert official.tolist() == [5, -1]
    unique, best = tracker_with_tracks('unique').assign_ids(scores.clone())
    assert unique.tolist() == [5, 7]
    assert best.tolist() == [4.0, 2.0]


def test_unique_assignment_without_conflicts_is_the_official_one():
    """Each detection's best column differs: both rules agree, new objects
    numbered in detection order."""
    scores = torch.tensor([[5.0, 1.0, 0.0], [0.0, 1.0, 3.0],
                           [6.0, 2.0, 1.0]])
    got = [
        tracker_with_tracks(a).assign_ids(scores.clone())[0].tolist()
        for a in ('official', 'unique')
    ]
    assert got == [[8, 7, 9], [8, 7, 9]]


def test_unique_assignment_in_a_clip():
    """Through ``track``: two detections at one place with the same
    embedding in frame 1 both match the frame-0 track with equal scores;
    officially the first takes id 0 and the second is dropped, one to one
    the second is a new object."""
    for assignment, frame1 in (('official', [0]), ('unique', [0, 1])):
        scene, t = Scene(), tracker(assignment=assignment)
        assert scene.frame(t, 0, [(HERE, 0, STRONG)]) == [0]
        assert scene.frame(t, 1, [(HERE, 0, STRONG),
                                  (HERE, 0, STRONG)]) == frame1


@pytest.mark.parametrize('kwargs,match', [
    (dict(assignment='hungarian'), 'assignment'),
    (dict(num_frames_retain=0), 'num_frames_retain'),
    (dict(label_memory='mean'), 'label_memory'),
    (dict(momentums=dict(embeds=0.5)), 'momentums'),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tracker(**kwargs)
