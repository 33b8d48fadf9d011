"""The weights-only checkpoint opt-in, for runs started from a config."""
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ...utils.checkpoint import register_checkpoint_safe_globals


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Call :func:`~mmdet_pep.utils.register_checkpoint_safe_globals`
    before the run loads or saves a checkpoint.

    ``tools/train.py`` and ``tools/test.py`` of this package opt in
    themselves. mmdet's own scripts (``mim train/test mmdet CONFIG``) do
    not, and on torch >= 2.6 they could then neither resume nor test
    from the checkpoints mmengine writes; with this hook in
    ``custom_hooks`` the config opts in. The runner calls ``before_run``
    before ``load_from``/``resume`` in ``train``, ``val`` and ``test``.
    """
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        """Opt in (idempotent)."""
        register_checkpoint_safe_globals()
