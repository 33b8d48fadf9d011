from .sipmask_track_head import SipMaskTrackHead, centre_cells, jitter_boxes

__all__ = ['SipMaskTrackHead', 'centre_cells', 'jitter_boxes']
