"""Resume with the random numbers an uninterrupted run would have drawn.

mmengine's resume restores the iteration, weights, optimizer, schedulers
and message hub, re-seeds, and replays the data loader up to the resumed
iteration, so the *data* (sampler order and pipeline randomness) match an
uninterrupted run. It does not restore torch's global random generator,
which the PEP head draws from while training (the originals excavated per
image and the descriptors the purifier samples); after a resume these draws
differ and so do the losses. :class:`RNGStateHook` stores that generator's
state in every checkpoint and puts it back when training resumes.
"""
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

RNG_STATE_KEY = 'rng_state'


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save torch's CPU (and CUDA) RNG state in checkpoints; restore it on
    resume.

    The state is stored under ``checkpoint['rng_state']`` as plain tensors,
    so checkpoints stay loadable with ``weights_only=True`` and by tools
    that ignore the key. It is restored only when training *resumes* (the
    first iteration after loading is the checkpoint's iteration, > 0), not
    for ``load_from`` fine-tuning, and right before that iteration runs,
    after mmengine has replayed the data loader. numpy's and Python's
    generators are left alone on purpose: the data pipeline draws from them
    and mmengine's replay already brings them to the right state.

    With more than one process only rank 0's state is in the checkpoint,
    so nothing is restored and a warning says so (the resumed run is then
    not bit-identical, as with plain mmengine).
    """
    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the current RNG state to ``checkpoint``."""
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint[RNG_STATE_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded state until the first iteration after it."""
        state = checkpoint.get(RNG_STATE_KEY)
        meta_iter = checkpoint.get('meta', {}).get('iter', 0)
        self._pending = (state, meta_iter) if state is not None else None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Restore the state if this is the first iteration of a resume."""
        if self._pending is None:
            return
        (state, meta_iter), self._pending = self._pending, None
        if runner.iter == 0 or runner.iter != meta_iter:
            return  # load_from for fine-tuning, not a resume
        if get_world_size() > 1:
            runner.logger.warning(
                'RNGStateHook: the checkpoint holds the random state of rank '
                '0 only; not restored in distributed training')
            return
        torch.set_rng_state(state['torch'])
        cuda = state.get('cuda')
        if cuda and torch.cuda.is_available():
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
            else:
                runner.logger.warning(
                    f'RNGStateHook: the checkpoint has the CUDA random state '
                    f'of {len(cuda)} devices, this machine '
                    f'{torch.cuda.device_count()}; CUDA state not restored')
        runner.logger.info(
            f'RNGStateHook: restored the random state of iteration '
            f'{meta_iter}')
