from .fcos_targets import fcos_targets_single
from .misc import coord_grid, local_peaks, masks_to_boxes, zero_loss

__all__ = [
    'coord_grid', 'fcos_targets_single', 'local_peaks', 'masks_to_boxes',
    'zero_loss'
]
