"""Metrics of mmdet_pep, registered into mmdet's METRICS registry on
import."""
from .metrics import *  # noqa: F401,F403
from .metrics import __all__  # noqa: F401
