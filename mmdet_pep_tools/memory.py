"""Peak memory of a block of code, on the CPU (resident set) or CUDA.

Shared by ``tools/analysis_tools/benchmark_cpu.py`` and ``compare.py``
(see :mod:`.benchmark` for the timing).
"""
import sys

import torch

from .benchmark import synchronize


def _proc_status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status``, e.g. ``VmRSS``."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(f'{field} not in /proc/self/status')


def _reset_rss_peak() -> bool:
    """Reset the process's RSS high-water mark (``VmHWM``) to its RSS.

    Linux (>= 4.0) resets it on writing 5 to ``/proc/self/clear_refs``; the
    peak of one phase can then be read from ``VmHWM``, which the kernel keeps
    up to date without any sampling thread competing for the CPU.

    Returns:
        bool: Whether the mark was reset.
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _max_rss_bytes() -> int:
    """Lifetime peak RSS from ``getrusage`` (kB on Linux, bytes on macOS)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


class PeakMemory:
    """Peak memory of the code in a ``with`` block, above its level at entry.

    On CUDA this is ``torch.cuda.max_memory_allocated`` (tensors only, not
    the caching allocator's reserve). On the CPU it is the peak resident set
    size of this process (not of data loader workers), from the kernel's
    high-water mark reset at entry. Where that mark cannot be reset (not
    Linux), the lifetime ``ru_maxrss`` is used and the result is a lower
    bound: it is 0 unless the block goes above every earlier peak.

    Args:
        device (torch.device): The device whose memory to watch.

    Attributes:
        peak_mb (float): Peak above the entry level in MiB, after the block.
        baseline_mb (float): The level at entry in MiB.
        method (str): How it was measured.

    Example:
        >>> with PeakMemory(torch.device('cpu')) as mem:
        ...     x = torch.ones(2**24)
        >>> mem.peak_mb > 60
        True
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = None
        self.baseline_mb = None
        self.method = None
        self._resettable = False

    def _bytes_now(self) -> int:
        if self.device.type == 'cuda':
            return torch.cuda.memory_allocated(self.device)
        if self._resettable:
            return _proc_status_kb('VmRSS') * 1024
        return _max_rss_bytes()

    def _peak_bytes(self) -> int:
        if self.device.type == 'cuda':
            return torch.cuda.max_memory_allocated(self.device)
        if self._resettable:
            return _proc_status_kb('VmHWM') * 1024
        return _max_rss_bytes()

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = 'torch.cuda.max_memory_allocated'
        else:
            self._resettable = _reset_rss_peak()
            self.method = ('peak RSS (VmHWM), main process'
                           if self._resettable else
                           'ru_maxrss increase, main process (lower bound)')
        self._baseline = self._bytes_now()
        self.baseline_mb = self._baseline / 2**20
        return self

    def __exit__(self, *exc_info) -> None:
        synchronize(self.device)
        self.peak_mb = max(self._peak_bytes() - self._baseline, 0) / 2**20

    def as_dict(self) -> dict:
        """``peak_mb``, ``baseline_mb`` and ``method`` for a report."""
        return dict(
            peak_mb=self.peak_mb,
            baseline_mb=self.baseline_mb,
            method=self.method)
