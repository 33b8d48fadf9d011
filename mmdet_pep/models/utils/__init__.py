from .misc import coord_grid, local_peaks, masks_to_boxes, zero_loss

__all__ = ['coord_grid', 'local_peaks', 'masks_to_boxes', 'zero_loss']
