"""Milliseconds per image or video frame of a test run, in its metrics."""
import time
from typing import Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS


def count_frames(data_batch) -> int:
    """Images in a batch: one per ``DetDataSample``, every frame of a
    ``TrackDataSample`` (its ``video_data_samples``)."""
    samples = (data_batch or {}).get('data_samples') or []
    return sum(
        len(getattr(sample, 'video_data_samples', [sample]))
        for sample in samples)


@HOOKS.register_module()
class TestTimeHook(Hook):
    """Add ``test_ms_per_frame`` to the test metrics: the wall time of the
    test iterations after the first ``warmup``, divided by their images
    or video frames.

    An iteration is timed from its ``before_test_iter`` to its
    ``after_test_iter`` call. With the highest priority this hook's
    ``before`` runs first and its ``after`` first, so the time holds the
    model's test step (pre-processing, forward, post-processing and, for
    video models, tracking) and the evaluator's per-batch processing, but
    not data loading nor other hooks' drawing. Images of a batch are timed
    together; for a latency of one image, test with batch size 1 (video
    loaders give one clip per iteration).

    Args:
        warmup (int): First test iterations left out (one-off costs of the
            first forward). Defaults to 1.
    """
    priority = 'HIGHEST'

    def __init__(self, warmup: int = 1) -> None:
        if warmup < 0:
            raise ValueError(f'TestTimeHook: warmup must be >= 0, got '
                             f'{warmup}')
        self.warmup = warmup
        self._start = None
        self._seconds, self._frames = 0., 0

    def before_test_epoch(self, runner) -> None:
        self._seconds, self._frames = 0., 0

    def before_test_iter(self, runner, batch_idx: int,
                         data_batch=None) -> None:
        self._start = time.perf_counter()

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        end = time.perf_counter()
        if batch_idx >= self.warmup and self._start is not None:
            self._seconds += end - self._start
            self._frames += count_frames(data_batch)
        self._start = None

    def after_test_epoch(self, runner,
                         metrics: Optional[dict] = None) -> None:
        if metrics is not None and self._frames:
            metrics['test_ms_per_frame'] = 1000. * self._seconds / \
                self._frames
