import pytest
import torch

from mmdet_pep.models import PEPExcavator
from mmdet_pep.models.layers.pep_excavator import coord_grid, local_peaks


def excavator(**kwargs):
    torch.manual_seed(0)
    return PEPExcavator(
        num_classes=2,
        in_channels=8,
        desc_channels=8,
        feat_channels=4,
        hidden_channels=4,
        norm_cfg=None,
        **kwargs)


def test_coord_grid_uses_pixel_centres():
    grid = coord_grid(2, 4, torch.device('cpu'))
    assert grid.shape == (2, 2, 4)
    assert grid[0, 0].tolist() == [-0.75, -0.25, 0.25, 0.75]
    assert grid[1, :, 0].tolist() == [-0.5, 0.5]


def test_local_peaks():
    heat = torch.zeros(1, 5, 5)
    heat[0, 1, 1], heat[0, 1, 2], heat[0, 4, 4] = 0.9, 0.5, 0.7
    peaks = local_peaks(heat)
    assert peaks.nonzero().tolist() == [[0, 1, 1], [0, 4, 4]]


def test_targets_near_rule_and_key_cap():
    exc = excavator(near_ratio=1.5, max_keys_train=1, center_radius=0)
    boxes = torch.tensor([[0., 0, 16, 16], [16, 0, 32, 16], [20, 0, 36, 16],
                          [48, 48, 64, 64]])
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    heat, near = exc.get_targets(boxes, centers, torch.tensor([0, 3]),
                                 (8, 8), (64, 64))
    # Box 0 grown x1.5 reaches boxes 1 and 2; only the closest is kept.
    assert near[0].tolist() == [False, True, False, False]
    assert not near[1].any()
    assert heat[0].sum() == 1 and heat[0, 1, 3] == 1 and heat[1].sum() == 0


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
    losses, mined = exc.loss(feat, torch.randn(2, 8), torch.zeros(2, 2),
                             torch.tensor([0, 1]), boxes, centers,
                             torch.tensor([1, 1]), (64, 64))
    assert mined['gt_inds'].tolist() == [1, 0]
    assert mined['descriptors'].shape == (2, 8)
    assert losses['excavate'] > 0 and losses['cls'] > 0
    assert losses['num_heat_pos'] == 2 * 9
    # Two positive keys plus up to num_neg_keys negatives per original.
    assert 2 <= losses['num_keys'] <= 2 + 2 * exc.num_neg_keys


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
