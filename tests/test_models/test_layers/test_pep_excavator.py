import pytest
import torch

from pep_testing import tiny_excavator as excavator


def test_targets_near_rule_and_key_cap():
    # Box 0 grown x1.5 about its centre is [-4, -4, 20, 20]: it overlaps
    # boxes 1 (x from 16) and 2 (x from 18); box 3 is far away.
    boxes = torch.tensor([[0., 0, 16, 16], [16, 0, 32, 16], [18, 0, 34, 16],
                          [48, 48, 64, 64]])
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    for cap, expected in ((1, [False, True, False, False]),
                          (2, [False, True, True, False])):
        exc = excavator(near_ratio=1.5, max_keys_train=cap, center_radius=0)
        heat, near = exc.get_targets(boxes, centers, torch.tensor([0, 3]),
                                     (8, 8), (64, 64))
        # Closest first: box 1 (centre 16 px away) before box 2 (18 px).
        assert near[0].tolist() == expected
        assert not near[1].any() and heat[1].sum() == 0
    # Centre cells: box 1 (24, 8) -> (row 1, col 3); box 2 (26, 8) -> (1, 3).
    assert heat[0].sum() == 1 and heat[0, 1, 3] == 1


@pytest.mark.parametrize('axis', ['x', 'y'])
def test_near_needs_a_positive_overlap(axis):
    # The original's box [0, 0, 16, 8] (wide, so x and y extents differ)
    # grown x1.5 is [-4, -2, 20, 10]. A neighbour starting exactly at its
    # edge (20 in x, 10 in y) touches with zero overlap: not near; one
    # pixel further in overlaps by 1: near.
    exc = excavator(near_ratio=1.5, center_radius=0)
    ori = [0., 0, 16, 8]
    if axis == 'x':
        touching, overlapping = [20., 0, 36, 8], [19., 0, 35, 8]
    else:
        touching, overlapping = [0., 10, 16, 18], [0., 9, 16, 17]
    boxes = torch.tensor([ori, touching, overlapping])
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    _, near = exc.get_targets(boxes, centers, torch.tensor([0]), (8, 8),
                              (64, 64))
    assert near[0].tolist() == [False, False, True]


def test_near_uses_each_axis_of_the_grown_box():
    # Original [0, 20, 8, 60] (tall): grown x1.5 -> [-2, 10, 10, 70]. A box
    # at x 9..20, y 0..12 overlaps it (1 x 2 px); with the axes mixed up
    # (x1 from y, or the centre from y2) it would not. The relation is not
    # symmetric: box 1 grown is [6.25, -3, 22.75, 15], which misses box 0.
    exc = excavator(near_ratio=1.5, center_radius=0)
    boxes = torch.tensor([[0., 20, 8, 60], [9., 0, 20, 12]])
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    _, near = exc.get_targets(boxes, centers, torch.tensor([0, 1]), (8, 8),
                              (64, 64))
    assert near.tolist() == [[False, True], [False, False]]


def test_maps_depend_on_the_descriptor():
    exc = excavator()
    feat = exc(torch.randn(1, 8, 16, 16))[0]
    assert feat.shape == (4, 8, 8)
    desc = torch.randn(3, 8)
    maps = exc.excavate_maps(feat, desc, torch.zeros(3, 2))
    assert maps.shape == (3, 8, 8)
    assert not torch.allclose(maps[0], maps[1])


def test_loss_gives_mined_descriptors_for_neighbours():
    exc = excavator()
    feat = exc(torch.randn(1, 8, 16, 16))[0]
    boxes = torch.tensor([[0., 0, 16, 16], [16, 0, 32, 16]])
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    losses, (mined, ) = exc.loss(
        feat[None],
        [dict(descriptors=torch.randn(2, 8), xy=torch.zeros(2, 2),
              gt_inds=torch.tensor([0, 1]))],
        [dict(boxes=boxes, centers=centers, labels=torch.tensor([1, 1]))],
        (64, 64))
    assert mined['gt_inds'].tolist() == [1, 0]
    assert mined['descriptors'].shape == (2, 8)
    assert set(losses) == {'loss_excavate', 'loss_excavate_cls'}
    assert losses['loss_excavate'] > 0 and losses['loss_excavate_cls'] > 0


def test_loss_of_a_batch_with_an_image_without_originals():
    exc = excavator()
    feats = exc(torch.randn(2, 8, 16, 16))
    boxes = torch.tensor([[0., 0, 16, 16], [16, 0, 32, 16]])
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    gt = dict(boxes=boxes, centers=centers, labels=torch.tensor([1, 1]))
    none = dict(descriptors=torch.zeros(0, 8), xy=torch.zeros(0, 2),
                gt_inds=torch.zeros(0, dtype=torch.long))
    some = dict(descriptors=torch.randn(2, 8), xy=torch.zeros(2, 2),
                gt_inds=torch.tensor([0, 1]))
    losses, mined = exc.loss(feats, [none, some], [gt, gt], (64, 64))
    assert mined[0] is None and mined[1]['gt_inds'].tolist() == [1, 0]
    alone, _ = exc.loss(feats[1:], [some], [gt], (64, 64))
    # The image without originals adds nothing to sums or counts.
    for key in losses:
        torch.testing.assert_close(losses[key], alone[key])
    # Without any original both losses are exact zeros that still reach
    # every parameter (DDP).
    empty, _ = exc.loss(feats[:1], [none], [gt], (64, 64))
    assert all(v.item() == 0 for v in empty.values())
    sum(empty.values()).backward()
    assert all(p.grad is not None for p in exc.parameters())


def test_predict_caps_keys():
    exc = excavator()
    feat = exc(torch.randn(1, 8, 16, 16))[0]
    out = exc.predict(feat, torch.randn(3, 8), torch.zeros(3, 2),
                      dict(key_thr=0.0, max_keys=2))
    assert out['descriptors'].shape[0] <= 6
    assert out['scores'].shape == (out['descriptors'].shape[0], 2)
    assert (out['scores'] >= 0).all() and (out['scores'] <= 1).all()
    none = exc.predict(feat, torch.randn(3, 8), torch.zeros(3, 2),
                       dict(key_thr=1.0, max_keys=2))
    assert none['descriptors'].shape == (0, 8)


@pytest.mark.parametrize('kwargs,match', [
    (dict(near_ratio=0.5), 'near_ratio'),
    (dict(center_radius=-1), 'center_radius'),
    (dict(max_keys_train=0), 'max_keys_train'),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        excavator(**kwargs)
