"""Hooks of mmdet_pep, registered into mmdet's HOOKS registry on import."""
from .hooks import *  # noqa: F401,F403
from .hooks import __all__  # noqa: F401
