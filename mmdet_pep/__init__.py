"""PEP (Perceive, Excavate and Purify) for MMDetection 3.

Importing this package registers its modules into mmdet's registries and
changes nothing else in mmengine, mmdet or torch. Configs pull it in with::

    custom_imports = dict(imports=['mmdet_pep'], allow_failed_imports=False)

Programs that save or load mmengine checkpoints under torch's
``weights_only`` mode opt in explicitly, as ``tools/train.py`` and
``tools/test.py`` do::

    import mmdet_pep
    mmdet_pep.register_checkpoint_safe_globals()
"""
# Registration of the package's modules into mmdet's registries.
from . import datasets, engine, evaluation, models  # noqa: F401
from .utils.checkpoint import register_checkpoint_safe_globals
from .version import __version__

__all__ = ['__version__', 'register_checkpoint_safe_globals']
