"""``masks_to_boxes`` on empty input and empty masks.

PEP's predicted and GT boxes both come from it, so an empty mask must give
a zero box (not ``inf``/``-1`` from the min/max of nothing) and a batch of
no masks must keep the (N, 4) float32 shape that mmdet's metrics expect.
Expected boxes are written by hand in the pixel-edge convention:
x1 = first column, x2 = last column + 1 (mmdet's ``mask2bbox``).
"""
import torch

from mmdet.structures.mask import mask2bbox
from mmdet_pep.models.utils import masks_to_boxes


def test_no_masks_give_a_0x4_float32_tensor():
    boxes = masks_to_boxes(torch.zeros((0, 7, 9), dtype=torch.bool))
    assert boxes.shape == (0, 4)
    assert boxes.dtype == torch.float32


def test_an_empty_mask_gives_a_zero_row_and_the_others_tight_boxes():
    # H != W, so that swapped axes would show.
    h, w = 10, 12
    masks = torch.zeros((4, h, w), dtype=torch.bool)
    masks[0, 2:5, 3:7] = True  # rows 2-4, columns 3-6
    # masks[1] stays all False.
    masks[2, 9, 0] = True  # one pixel in the bottom-left corner
    masks[3, 0, 11] = True  # two blobs: top-right pixel ...
    masks[3, 6:8, 4:6] = True  # ... and a 2x2 square lower left
    boxes = masks_to_boxes(masks)
    assert boxes.dtype == torch.float32 and boxes.shape == (4, 4)
    assert boxes.tolist() == [
        [3., 2., 7., 5.],
        [0., 0., 0., 0.],
        [0., 9., 1., 10.],
        [4., 0., 12., 8.],
    ]
    # mmdet's own conversion agrees, empty row included.
    assert torch.equal(boxes, mask2bbox(masks).float())


def test_all_masks_empty():
    boxes = masks_to_boxes(torch.zeros((3, 5, 6), dtype=torch.bool))
    assert boxes.dtype == torch.float32
    assert torch.equal(boxes, torch.zeros((3, 4)))


def test_a_full_mask_spans_the_image():
    boxes = masks_to_boxes(torch.ones((1, 5, 6), dtype=torch.bool))
    assert boxes.tolist() == [[0., 0., 6., 5.]]


def test_masks_in_the_first_row_and_column():
    masks = torch.zeros((2, 5, 6), dtype=torch.bool)
    masks[0, 0, 3] = True  # first row only
    masks[1, 2, 0] = True  # first column only
    assert masks_to_boxes(masks).tolist() == [[3., 0., 4., 1.],
                                              [0., 2., 1., 3.]]
