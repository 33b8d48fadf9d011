"""Latency and training-step time on the CPU or a GPU.

Shared by ``tools/analysis_tools/benchmark_cpu.py`` and
``tools/analysis_tools/compare.py``. mmdet's ``InferenceBenchmark`` runs on
CUDA only and reports one mean FPS; here every call is timed on its own so
that the report can give the median and percentiles of the per-image latency.
On a shared CPU a few slow outliers move the mean a lot and the median
little. The first calls (warm-up) pay for lazy allocations, oneDNN/cuDNN
kernel selection and cold caches and are never counted. Peak memory is
in :mod:`.memory`.
"""
import platform
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger, print_log

#: What ``inference_step`` can time: the whole detector (``full``) or only
#: its data preprocessor, backbone and neck (``floor``), the cost every head
#: on the same backbone and neck pays before doing any work of its own.
PARTS = ('full', 'floor')


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA kernels, so that a timer measures their work.

    CUDA launches are asynchronous: without this a timer stops when the
    kernels are queued, not when they have finished. A no-op on the CPU.

    Args:
        device (torch.device): The device the timed work runs on.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's as far as Python can tell."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def summarize_latencies(latencies: Sequence[float],
                        images_per_call: int = 1) -> dict:
    """Per-image latency statistics of timed calls.

    Args:
        latencies (Sequence[float]): Duration of each call in seconds.
        images_per_call (int): Images processed by one call (the batch
            size); each duration is divided by it. Defaults to 1.

    Returns:
        dict: ``num_calls``, ``images_per_call``, the median, mean, standard
        deviation, 10/25/75/90th percentiles, minimum and maximum in ms per
        image (``median_ms``, ``mean_ms``, ``std_ms``, ``p10_ms``,
        ``p25_ms``, ``p75_ms``, ``p90_ms``, ``min_ms``, ``max_ms``), and
        ``fps``, images per second over the total time (mmdet's
        definition: ``1000 / mean_ms``).
    """
    if len(latencies) == 0:
        raise ValueError('no latencies to summarise')
    if images_per_call < 1:
        raise ValueError(
            f'images_per_call must be >= 1, got {images_per_call}')
    ms = np.asarray(latencies, dtype=np.float64) * 1000. / images_per_call
    p10, p25, p50, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
    mean = float(ms.mean())
    return dict(
        num_calls=len(ms),
        images_per_call=images_per_call,
        median_ms=float(p50),
        mean_ms=mean,
        std_ms=float(ms.std()),
        p10_ms=float(p10),
        p25_ms=float(p25),
        p75_ms=float(p75),
        p90_ms=float(p90),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        fps=1000. / mean)


def cycle(loader: Iterable) -> Iterator:
    """Yield the items of ``loader`` forever, iterating it again at its end.

    Unlike :func:`itertools.cycle` it keeps no copies, so a data loader over
    thousands of images can be timed for more calls than it has images
    without holding them all in memory.

    Args:
        loader (Iterable): A re-iterable, e.g. a ``DataLoader``.

    Yields:
        Any: The items of ``loader``, over and over.
    """
    while True:
        empty = True
        for item in loader:
            empty = False
            yield item
        if empty:
            raise ValueError('cannot cycle over an empty loader')


def inference_step(model: torch.nn.Module,
                   part: str = 'full') -> Callable[[dict], Any]:
    """A callable that runs one inference part of ``model`` on a data batch.

    Both parts start from the same data loader batch and include the data
    preprocessor (moving to the device, normalising, padding), so the head's
    share is the difference of the two.

    Args:
        model (torch.nn.Module): An mmdet detector in eval mode.
        part (str): ``'full'`` runs ``model.test_step`` (preprocessing,
            backbone, neck, head and post-processing, as mmdet's benchmark
            does); ``'floor'`` runs the preprocessor and
            ``model.extract_feat`` (backbone and neck). Defaults to
            ``'full'``.

    Returns:
        Callable[[dict], Any]: Takes a batch as the data loader yields it.
    """
    if part == 'full':

        def step(data: dict) -> Any:
            with torch.no_grad():
                return model.test_step(data)
    elif part == 'floor':

        def step(data: dict) -> Any:
            with torch.no_grad():
                inputs = model.data_preprocessor(data, False)['inputs']
                return model.extract_feat(inputs)
    else:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}')
    return step


def measure_latency(steps: Dict[str, Callable[[Any], Any]],
                    batches: Iterator,
                    num_iters: int,
                    num_warmup: int = 5,
                    images_per_call: int = 1,
                    device: torch.device = torch.device('cpu'),
                    log_interval: int = 0,
                    logger: Optional[MMLogger] = None,
                    timer: Callable[[], float] = time.perf_counter) -> dict:
    """Time each step on the same batches, excluding warm-up calls.

    Every batch is drawn from ``batches`` outside the timed region and then
    given to each step in turn. Timing the steps on the same batch one right
    after the other (rather than in two separate passes) keeps their
    difference meaningful on a machine whose load drifts.

    Args:
        steps (dict[str, Callable]): Named callables taking one batch.
        batches (Iterator): Yields at least ``num_warmup + num_iters``
            batches, e.g. ``cycle(data_loader)``.
        num_iters (int): Timed batches, at least 1.
        num_warmup (int): Batches run first and not timed. Defaults to 5.
        images_per_call (int): Images in one batch. Defaults to 1.
        device (torch.device): Device the steps run on; CUDA is
            synchronised around every call. Defaults to the CPU.
        log_interval (int): Log the running statistics every this many
            timed batches; 0 logs nothing. Defaults to 0.
        logger (MMLogger, optional): Where to log; ``print`` if None.
        timer (Callable[[], float]): Clock in seconds. Defaults to
            :func:`time.perf_counter`.

    Returns:
        dict: For each step name, :func:`summarize_latencies` of its timed
        calls plus ``num_warmup`` and ``latencies_ms``, the per-image
        latency of every timed call in order.
    """
    if num_iters < 1:
        raise ValueError(f'num_iters must be >= 1, got {num_iters}')
    if num_warmup < 0:
        raise ValueError(f'num_warmup must be >= 0, got {num_warmup}')
    times = {name: [] for name in steps}
    for i in range(num_warmup + num_iters):
        batch = next(batches)
        for name, step in steps.items():
            synchronize(device)
            start = timer()
            step(batch)
            synchronize(device)
            if i >= num_warmup:
                times[name].append(timer() - start)
        done = i + 1 - num_warmup
        if log_interval and done > 0 and done % log_interval == 0:
            medians = ', '.join(
                f'{name} {np.median(t) * 1000. / images_per_call:.1f}'
                for name, t in times.items())
            print_log(
                f'timed batch [{done}/{num_iters}], median ms/img: {medians}',
                logger)
    results = {}
    for name, t in times.items():
        stats = summarize_latencies(t, images_per_call)
        stats['num_warmup'] = num_warmup
        stats['latencies_ms'] = [s * 1000. / images_per_call for s in t]
        results[name] = stats
    return results


class StepTimerHook(Hook):
    """Record how long every ``train_step`` of a Runner takes.

    The clock starts in ``before_train_iter``, after the data loader has
    delivered the batch, and stops in ``after_train_iter``, so a step is the
    forward, backward and optimizer update without data loading. The
    highest priority makes this hook the first to run in both: the logging,
    scheduler steps and checkpointing done by other hooks after an iteration
    stay out of the measurement, and only the cheap bookkeeping of the
    default hooks' ``before_train_iter`` is in.

    Attributes:
        times (list[float]): Duration of each step in seconds, in order.
    """

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self.times = []
        self._start = None
        self._device = None

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        self._device = next(runner.model.parameters()).device
        synchronize(self._device)
        self._start = time.perf_counter()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        synchronize(self._device)
        self.times.append(time.perf_counter() - self._start)

    def summary(self, num_warmup: int) -> dict:
        """:func:`summarize_latencies` of the steps after ``num_warmup``.

        Args:
            num_warmup (int): Leading steps to leave out.

        Returns:
            dict: The statistics of :func:`summarize_latencies` in ms per
            step (a whole batch) without its per-image ``fps`` and
            ``images_per_call``, plus ``num_warmup``.
        """
        if len(self.times) <= num_warmup:
            raise ValueError(
                f'only {len(self.times)} training steps were run, none left '
                f'after {num_warmup} warm-up steps')
        stats = summarize_latencies(self.times[num_warmup:])
        del stats['fps'], stats['images_per_call']
        stats['num_warmup'] = num_warmup
        return stats
