from .sipmask_vis_tracker import SipMaskVISTracker

__all__ = ['SipMaskVISTracker']
