from .fcos_targets import fcos_targets_single
from .misc import (coord_grid, gt_masks_on_grid, levels_to_points,
                   local_peaks, masks_to_boxes, zero_loss)

__all__ = [
    'coord_grid', 'fcos_targets_single', 'gt_masks_on_grid',
    'levels_to_points', 'local_peaks', 'masks_to_boxes', 'zero_loss'
]
