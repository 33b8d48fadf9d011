from .sipmask_vis import SipMaskVIS

__all__ = ['SipMaskVIS']
