import torch
import torch.nn as nn

from mmdet_pep.models.utils import coord_grid, local_peaks, zero_loss


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


def test_zero_loss_is_zero_and_reaches_every_parameter():
    module = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    loss = zero_loss(module, torch.ones(5, dtype=torch.float64))
    assert loss.item() == 0 and loss.dtype == torch.float64
    loss.backward()
    for p in module.parameters():
        assert torch.equal(p.grad, torch.zeros_like(p))
