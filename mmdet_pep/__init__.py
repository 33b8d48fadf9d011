"""PEP (Perceive, Excavate and Purify) for MMDetection 3.

Importing this package registers its modules into mmdet's registries and
makes mmengine checkpoints loadable under torch's ``weights_only`` mode.
Configs pull it in with::

    custom_imports = dict(imports=['mmdet_pep'], allow_failed_imports=False)
"""
from .utils import register_checkpoint_safe_globals
from .version import __version__

register_checkpoint_safe_globals()

# Registration of the package's modules into mmdet's registries.
from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__', 'register_checkpoint_safe_globals']
