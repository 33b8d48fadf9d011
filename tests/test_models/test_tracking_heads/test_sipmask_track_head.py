"""SipMaskTrackHead: the stride-8 track map, centre sampling, the matching
loss by hand and with new, missing or no objects, and mmdet's
MaskTrackRCNNTracker driven by it."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet_pep.models.tracking_heads import centre_cells, jitter_boxes


def build(**kwargs):
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='SipMaskTrackHead',
            in_channels=8,
            feat_channels=8,
            embed_channels=4,
            norm_cfg=dict(type='GN', num_groups=2, requires_grad=True),
            **kwargs))
    head.init_weights()
    return head


def feats(batch=1, shape=(61, 77)):
    return [
        torch.randn(batch, 8, -(-shape[0] // s), -(-shape[1] // s))
        for s in (8, 16, 32, 64, 128)
    ]


def test_track_map_at_stride_8_on_odd_sizes_and_official_init():
    head = build()
    out = head(feats(2))
    assert out.shape == (2, 4, 8, 10)
    assert len(head.track_convs) == 3
    for module in head.track_convs:
        assert module.conv.weight.std() < 0.02


def test_centre_cells_by_hand_and_clamped():
    boxes = torch.tensor([[0., 0., 16., 16.], [10., 20., 30., 21.],
                          [100., 90., 140., 130.], [-30., -30., -10., -2.]])
    # Centres (8, 8), (20, 20.5), (120, 110), (-20, -16): cells
    # (1, 1), (2, 2), clamped (7, 9) on an 8 x 10 map, clamped (0, 0).
    assert centre_cells(boxes, 8, (8, 10)).tolist() == [[1, 1], [2, 2],
                                                         [7, 9], [0, 0]]


def test_jitter_stays_within_five_percent():
    boxes = torch.tensor([[10., 20., 50., 100.]])
    g = torch.Generator().manual_seed(0)
    out = jitter_boxes(boxes.repeat(200, 1), 0.05, g)
    centre = (out[:, :2] + out[:, 2:]) / 2
    size = out[:, 2:] - out[:, :2]
    assert ((centre - torch.tensor([30., 60.])).abs() <=
            torch.tensor([40., 80.]) * 0.05 + 1e-4).all()
    assert ((size / torch.tensor([40., 80.]) - 1).abs() <= 0.05 + 1e-6).all()
    assert not torch.equal(out[0], out[1])
    assert torch.equal(jitter_boxes(boxes, 0.), boxes)


def test_match_targets():
    head = build()
    ids = torch.tensor([7, 3, 9, 3])
    ref_ids = torch.tensor([3, 5, 7])
    assert head.match_targets(ids, ref_ids).tolist() == [3, 1, 0, 1]
    assert head.match_targets(ids, ref_ids[:0]).tolist() == [0, 0, 0, 0]


def fixed_maps(head, key_map, ref_map):
    """Make the head return the given track maps (key, then reference)."""
    maps = iter([key_map, ref_map])
    head.forward = lambda x: next(maps)


def test_loss_by_hand():
    """One image; key map with embedding a at cell (0, 0) and b at (1, 1);
    reference GT ids (5, 7) whose boxes' centres are in cells (1, 1) and
    (0, 0) of a reference map holding c and d there. Samples: box at cell
    (0, 0) of GT 0 (id 7 -> target 1 + 1 = 2), box at (1, 1) of GT 1 (id 4,
    absent -> 0). Cross-entropy over [0, e.c, e.d]... averaged."""
    head = build(jitter=0.)
    key = torch.zeros(1, 4, 2, 2)
    ref = torch.zeros(1, 4, 2, 2)
    a, b = torch.tensor([1., 0., 2., 0.]), torch.tensor([0., 1., 0., -1.])
    c, d = torch.tensor([1., 1., 0., 0.]), torch.tensor([0., 0., 1., 1.])
    key[0, :, 0, 0], key[0, :, 1, 1] = a, b
    ref[0, :, 1, 1], ref[0, :, 0, 0] = c, d
    fixed_maps(head, key, ref)
    boxes = torch.tensor([[0., 0., 8., 8.], [8., 8., 16., 16.]])
    loss = head.loss(None, None, [boxes], [torch.tensor([0, 1])],
                     [torch.tensor([7, 4])], [boxes.flip(0)],
                     [torch.tensor([5, 7])])['loss_match']
    # Reference order: box 0 of the flipped list is at cell (1, 1) -> c
    # (id 5), box 1 at (0, 0) -> d (id 7).
    logits = torch.stack([
        torch.tensor([0., a @ c, a @ d]),
        torch.tensor([0., b @ c, b @ d])
    ])
    expected = F.cross_entropy(logits, torch.tensor([2, 0]))
    assert loss.item() == pytest.approx(expected.item())
    by_hand = (-(a @ d) + math.log(1 + math.exp(a @ c) + math.exp(a @ d)) +
               math.log(1 + math.exp(b @ c) + math.exp(b @ d))) / 2
    assert loss.item() == pytest.approx(by_hand)


@pytest.mark.parametrize('case', ['new', 'missing', 'no_reference', 'no_key'])
def test_loss_stays_finite(case):
    """A reference frame with a new object, with the key's objects missing,
    with no object at all; a key frame without samples: finite losses that
    reach every parameter (an exact zero for no samples)."""
    head = build()
    boxes = torch.tensor([[4., 4., 20., 20.], [30., 30., 50., 60.]])
    key_ids = torch.tensor([1, 2])
    ref_boxes, ref_ids = {
        'new': (boxes.clone(), torch.tensor([2, 9])),
        'missing': (boxes[:1], torch.tensor([8])),
        'no_reference': (boxes[:0], torch.tensor([], dtype=torch.long)),
        'no_key': (boxes, key_ids),
    }[case]
    samples = boxes[:0] if case == 'no_key' else boxes
    gt_inds = torch.arange(len(samples))
    out = head.loss(
        feats(2, (64, 64)), feats(2, (64, 64)), [samples, samples],
        [gt_inds, gt_inds], [key_ids, key_ids], [ref_boxes, ref_boxes],
        [ref_ids, ref_ids])['loss_match']
    assert torch.isfinite(out)
    out.backward()
    assert all(p.grad is not None for p in head.parameters())
    if case in ('no_key', 'no_reference'):
        # No samples, or only the "new" column: nothing to learn.
        assert out.item() == 0


def frame(frame_id, boxes, labels):
    sample = DetDataSample(
        metainfo=dict(frame_id=frame_id, scale_factor=(1., 1.),
                      img_shape=(64, 64), ori_shape=(64, 64)))
    inst = InstanceData()
    inst.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    inst.labels = torch.tensor(labels, dtype=torch.long)
    inst.scores = torch.full((len(labels), ), 0.9)
    inst.masks = torch.zeros(len(labels), 64, 64, dtype=torch.bool)
    sample.pred_instances = inst
    return sample


def test_tracker_keeps_a_still_object_and_numbers_a_new_one():
    """mmdet's MaskTrackRCNNTracker unchanged on this head: an object that
    stays in place keeps its id in every frame, an object that appears in
    frame 2 (same class, opposite embedding) gets a new id, an empty frame
    gives an empty, well-typed result and does not break the tracks."""
    head = build()
    track_map = torch.zeros(1, 4, 8, 8)
    track_map[0, :, 1, 1] = torch.tensor([3., 0., 0., 3.])
    track_map[0, :, 5, 5] = torch.tensor([-3., 0., 0., -3.])
    head.forward = lambda x: track_map
    tracker = MODELS.build(
        dict(type='MaskTrackRCNNTracker', num_frames_retain=20))
    model = SimpleNamespace(track_head=head)
    still = [8., 8., 16., 16.]
    ids = []
    for t, (boxes, labels) in enumerate([([still], [0]), ([still], [0]),
                                         ([still, [40., 40., 48., 48.]],
                                          [0, 0]), ([], []),
                                         ([still], [0])]):
        out = tracker.track(
            model=model, feats=None, data_sample=frame(t, boxes, labels))
        ids.append(out.instances_id.tolist())
        if not boxes:
            assert out.bboxes.shape == (0, 4)
            assert out.masks.shape == (0, 64, 64)
            assert out.instances_id.dtype == torch.long
    assert ids == [[0], [0], [0, 1], [], [0]]
