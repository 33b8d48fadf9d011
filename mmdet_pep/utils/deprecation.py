"""Old registry names kept for one release after a rename.

The generic data, hook and metric classes once carried PEP's name
(``PEPCocoDataset``, ...). Each old name is registered as a subclass of the
renamed class that only adds a warning: configs with the old ``type``
strings build, ``isinstance`` checks against the new class hold, and the
first instance of each old name warns once per process with a
``FutureWarning`` (shown by default, unlike ``DeprecationWarning``, which
Python hides outside ``__main__``; configs are written by users). The old
names go in the next release.
"""
import warnings
from typing import Type

from mmengine.registry import Registry

#: The release that removes the old names.
REMOVED_IN = '0.3.0'


def deprecated_alias(cls: Type, old_name: str, registry: Registry) -> Type:
    """Register ``old_name`` in ``registry`` as a warning subclass of ``cls``.

    Assign the result to ``old_name`` in ``cls``'s module, so that
    instances pickle (data loader workers started with ``spawn``).

    Args:
        cls (type): The renamed class, already registered under its name.
        old_name (str): The name it had.
        registry (Registry): Where ``cls`` is registered.

    Returns:
        type: The subclass, named ``old_name``.
    """
    message = (f'{old_name} is deprecated and will be removed in '
               f'mmdet_pep {REMOVED_IN}; use {cls.__name__} (same '
               f'arguments) instead, e.g. type={cls.__name__!r} in configs.')

    def __init__(self, *args, **kwargs):
        if not alias._warned:
            alias._warned = True
            warnings.warn(message, FutureWarning, stacklevel=2)
        cls.__init__(self, *args, **kwargs)

    alias = type(
        old_name, (cls, ),
        dict(__init__=__init__,
             __module__=cls.__module__,
             __qualname__=old_name,
             _warned=False,
             __doc__=f'Deprecated alias of :class:`{cls.__name__}`. '
             f'{message}'))
    registry.register_module(name=old_name, module=alias)
    return alias
