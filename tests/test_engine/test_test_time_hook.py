"""TestTimeHook: milliseconds per image or frame in the test metrics, with
a clock stepped by hand."""
import pytest
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet_pep.engine.hooks import test_time_hook
from mmdet_pep.engine.hooks.test_time_hook import count_frames


def clip(num_frames):
    track = TrackDataSample()
    track.video_data_samples = [DetDataSample() for _ in range(num_frames)]
    return track


class Clock:
    """perf_counter that returns the next of ``times``."""

    def __init__(self, times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def run(hook, batches, times, monkeypatch):
    monkeypatch.setattr(test_time_hook.time, 'perf_counter', Clock(times))
    hook.before_test_epoch(None)
    for i, batch in enumerate(batches):
        hook.before_test_iter(None, i, batch)
        hook.after_test_iter(None, i, batch, outputs=None)
    metrics = {'coco/segm_mAP': 0.5}
    hook.after_test_epoch(None, metrics)
    return metrics


def test_frames_of_images_and_clips():
    assert count_frames(dict(data_samples=[DetDataSample()] * 3)) == 3
    assert count_frames(dict(data_samples=[clip(8), clip(5)])) == 13
    assert count_frames(None) == 0 and count_frames({}) == 0


def test_ms_per_frame_leaves_out_the_warmup(monkeypatch):
    """Three clips of 4, 4 and 2 frames taking 5, 0.4 and 0.2 s: the first
    is warm-up, so 0.6 s over 6 frames = 100 ms per frame."""
    hook = HOOKS.build(dict(type='TestTimeHook'))
    batches = [dict(data_samples=[clip(n)]) for n in (4, 4, 2)]
    metrics = run(hook, batches, [0., 5., 10., 10.4, 20., 20.2],
                  monkeypatch)
    assert metrics['test_ms_per_frame'] == pytest.approx(100.)
    assert metrics['coco/segm_mAP'] == 0.5
    # A second test epoch starts from zero; no warm-up: all three count,
    # 2 s over 10 frames.
    hook = HOOKS.build(dict(type='TestTimeHook', warmup=0))
    metrics = run(hook, batches, [0., 1., 1., 1.5, 2., 2.5], monkeypatch)
    assert metrics['test_ms_per_frame'] == pytest.approx(200.)


def test_nothing_timed_adds_nothing(monkeypatch):
    """One iteration, all warm-up: no figure rather than a division by
    zero; a run without metrics is left alone."""
    hook = HOOKS.build(dict(type='TestTimeHook'))
    metrics = run(hook, [dict(data_samples=[DetDataSample()])], [0., 1.],
                  monkeypatch)
    assert 'test_ms_per_frame' not in metrics
    hook.after_test_epoch(None, None)


def test_bad_warmup_is_named():
    with pytest.raises(ValueError, match='warmup must be >= 0'):
        HOOKS.build(Config(dict(type='TestTimeHook', warmup=-1)))
