"""Safe checkpoint loading for mmengine 0.10.7 on torch >= 2.6.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors,
containers and allow-listed globals may be rebuilt. mmengine 0.10.7 writes a
few non-tensor objects into every checkpoint: the message hub's
``HistoryBuffer`` objects with numpy arrays and scalars inside, and the
``Counter`` of ``MultiStepLR`` milestones. Instead of turning the check off,
we allow exactly those globals, and we route mmengine's local-file loader
through :func:`load_checkpoint_weights_only` so that a checkpoint holding
anything else is refused with a message naming the file and the globals.

One thing cannot be allowed safely: ``HistoryBuffer.__getstate__`` stores
its default statistics methods (``min``, ``max``, ``current``, ``mean``),
which pickle as ``builtins.getattr(HistoryBuffer, 'min')``, and allowing
``getattr`` would let a crafted file reach any attribute of any allowed
object. Those four entries carry no information (``__setstate__`` restores
them), so checkpoints written after :func:`register_checkpoint_safe_globals`
leave them out; custom statistics registered by users are still written.

Importing :mod:`mmdet_pep` changes none of this: a program opts in by
calling :func:`register_checkpoint_safe_globals` once, before it saves or
loads a checkpoint. ``tools/train.py``, ``tools/test.py`` (also under
``mim train/test``), the demos and the analysis tools do so.
:func:`load_checkpoint_weights_only` works without the opt-in.
"""
import collections
import pickle
from typing import Callable, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


def _numpy_globals() -> List[object]:
    """Numpy classes and reconstructors that pickled arrays/scalars use.

    numpy 2 pickles through ``numpy._core``; numpy 1 through ``numpy.core``.
    """
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64)]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


#: Every global that mmengine 0.10.7's ``Runner.save_checkpoint`` writes
#: besides tensors and builtin containers.
CHECKPOINT_SAFE_GLOBALS = [
    HistoryBuffer, collections.Counter, *_numpy_globals()
]

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without the default methods."""
    state = {k: v for k, v in self.__dict__.items()
             if k != 'statistics_methods'}
    custom = {
        k: v
        for k, v in self._statistics_methods.items()
        if k not in _DEFAULT_STATISTICS
    }
    if custom:
        state['statistics_methods'] = custom
    return state


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects outside the weights-only allow-list."""


def load_checkpoint_weights_only(filename: str,
                                 map_location: Optional[Callable] = None):
    """Load a local checkpoint with ``torch.load(weights_only=True)``.

    Args:
        filename (str): Path of the checkpoint file.
        map_location (str | callable, optional): Passed to ``torch.load``.

    Returns:
        dict | OrderedDict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        UnsafeCheckpointError: If the file contains a global that is neither
            a torch type nor in :data:`CHECKPOINT_SAFE_GLOBALS`.
    """
    # Allowed for this call only. Only the globals the process does not
    # allow already: leaving ``safe_globals`` removes what it added.
    allowed = torch.serialization.get_safe_globals()
    missing = [g for g in CHECKPOINT_SAFE_GLOBALS if g not in allowed]
    try:
        with torch.serialization.safe_globals(missing):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                filename)
        except Exception:  # not a zip checkpoint: report the raw error
            unsafe = []
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint "{filename}": it contains objects '
            f'outside the weights-only allow-list '
            f'({", ".join(unsafe) or err}). Only tensors, containers and the '
            'globals in mmdet_pep.utils.CHECKPOINT_SAFE_GLOBALS are loaded. '
            'A checkpoint saved by mmengine without '
            'mmdet_pep.register_checkpoint_safe_globals() holds '
            '`getattr` (HistoryBuffer statistics); if you trust the file, '
            're-save it once with `python tools/model_converters/'
            'resave_checkpoint.py IN OUT`.') from None


def _load_from_local(filename: str, map_location=None):
    # mmengine's own loader raises a bare FileNotFoundError too; keep that.
    import os.path as osp
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_weights_only(filename, map_location)


_registered = False


def register_checkpoint_safe_globals() -> None:
    """Opt in to weights-only checkpoints for the whole process.

    Three process-wide changes, none of which importing :mod:`mmdet_pep`
    makes:

    - ``torch.serialization.add_safe_globals(CHECKPOINT_SAFE_GLOBALS)``, so
      plain ``torch.load(..., weights_only=True)`` reads mmengine's
      checkpoints;
    - ``HistoryBuffer.__getstate__`` leaves out the default statistics
      methods, so checkpoints saved from then on hold no ``getattr``;
    - mmengine's loader of local paths (scheme ``''`` of
      ``CheckpointLoader``) becomes :func:`load_checkpoint_weights_only`,
      so ``load_from``/``resume`` refuse files with other globals.

    Call it once before a checkpoint is saved or loaded, as the scripts in
    ``tools/`` do. Idempotent.
    """
    global _registered
    if _registered:
        return
    torch.serialization.add_safe_globals(CHECKPOINT_SAFE_GLOBALS)
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    # '' is mmengine's scheme for local paths; force replaces its loader.
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    _registered = True
