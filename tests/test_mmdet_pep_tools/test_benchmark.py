"""Latency, step-time and memory measurement, and benchmark_cpu.py."""
import copy
import inspect
import itertools
import json
import os.path as osp
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet_pep.datasets.synthetic import generate_coco_split
import mmdet_pep_tools.benchmark as benchmark
from mmdet_pep_tools.benchmark import (StepTimerHook, cycle, inference_step,
                                       measure_latency, summarize_latencies)
from pep_testing import tiny_detector_cfg
from pep_testing import ROOT, load_tool
PEP_CONFIG = osp.join(ROOT, 'configs/pep/pep_r18_fpn_1200it_synthetic.py')


class FakeClock:
    """A clock that only moves when a step says how long it took."""

    def __init__(self):
        self.now = 0.

    def __call__(self):
        return self.now


def test_summarize_latencies():
    stats = summarize_latencies([i / 1000. for i in range(1, 11)])
    assert stats['num_calls'] == 10
    assert stats['median_ms'] == pytest.approx(5.5)
    assert stats['mean_ms'] == pytest.approx(5.5)
    assert stats['p10_ms'] == pytest.approx(1.9)
    assert stats['p90_ms'] == pytest.approx(9.1)
    assert stats['min_ms'] == pytest.approx(1.)
    assert stats['max_ms'] == pytest.approx(10.)
    assert stats['fps'] == pytest.approx(1000. / 5.5)

    # A batch of two: the latency is per image.
    stats = summarize_latencies([0.010, 0.030], images_per_call=2)
    assert stats['median_ms'] == pytest.approx(10.)
    assert stats['fps'] == pytest.approx(100.)

    with pytest.raises(ValueError):
        summarize_latencies([])
    with pytest.raises(ValueError):
        summarize_latencies([0.1], images_per_call=0)


def test_measure_latency_excludes_warmup():
    clock = FakeClock()
    # The first two calls are slow (warm-up), the rest 10/30/20 ms.
    durations = iter([1.0, 0.8, 0.010, 0.030, 0.020])
    seen = []

    def step(batch):
        seen.append(batch)
        clock.now += next(durations)

    result = measure_latency({'model': step},
                             iter(range(100)),
                             num_iters=3,
                             num_warmup=2,
                             timer=clock)['model']
    assert seen == [0, 1, 2, 3, 4]
    assert result['num_calls'] == 3
    assert result['num_warmup'] == 2
    assert result['latencies_ms'] == pytest.approx([10., 30., 20.])
    assert result['median_ms'] == pytest.approx(20.)
    assert result['mean_ms'] == pytest.approx(20.)
    assert result['max_ms'] == pytest.approx(30.)


def test_measure_latency_pairs_steps_on_the_same_batches():
    clock = FakeClock()
    calls = []

    def make_step(name, seconds):

        def step(batch):
            calls.append((name, batch))
            clock.now += seconds

        return step

    result = measure_latency(
        {
            'full': make_step('full', 0.004),
            'floor': make_step('floor', 0.001)
        },
        iter('abcd'),
        num_iters=3,
        num_warmup=1,
        images_per_call=2,
        timer=clock)
    assert calls == [(n, b) for b in 'abcd' for n in ('full', 'floor')]
    assert result['full']['median_ms'] == pytest.approx(2.)
    assert result['floor']['median_ms'] == pytest.approx(.5)
    assert result['full']['num_calls'] == result['floor']['num_calls'] == 3

    with pytest.raises(ValueError):
        measure_latency({'full': make_step('full', 0.)}, iter('ab'), 0)


def test_measure_latency_defaults_to_a_real_clock(monkeypatch):
    """Slow first calls (lazy initialisation) do not reach the median, with
    the default timer. The default is ``time.perf_counter``, bound when the
    function was defined; the steps move a fake clock standing in for it,
    so the check does not depend on how fast this machine is."""
    assert inspect.signature(measure_latency).parameters[
        'timer'].default is time.perf_counter
    clock = FakeClock()
    monkeypatch.setattr(
        measure_latency, '__defaults__',
        measure_latency.__defaults__[:-1] + (clock, ))
    calls = []

    def step(batch):
        calls.append(batch)
        clock.now += 0.3 if len(calls) <= 2 else 0.002

    result = measure_latency({'model': step},
                             iter(range(10)),
                             num_iters=5,
                             num_warmup=2)['model']
    assert calls == list(range(7))
    assert result['num_calls'] == 5
    assert result['latencies_ms'] == pytest.approx([2.] * 5)
    assert result['median_ms'] == pytest.approx(2.)
    assert result['max_ms'] == pytest.approx(2.)


def test_cycle():
    items = cycle([1, 2, 3])
    assert [next(items) for _ in range(7)] == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(ValueError):
        next(cycle([]))


def test_inference_step():
    torch.manual_seed(0)
    model = MODELS.build(tiny_detector_cfg()).eval()
    packed = demo_mm_inputs(1, [(3, 64, 64)], num_items=[2], num_classes=3)
    data = dict(inputs=packed['inputs'], data_samples=packed['data_samples'])

    feats = inference_step(model, 'floor')(data)
    assert len(feats) == 5  # the FPN levels
    assert feats[0].shape[:2] == (1, 16)
    assert not feats[0].requires_grad

    preds = inference_step(model, 'full')(data)
    assert len(preds) == 1 and 'pred_instances' in preds[0]

    with pytest.raises(ValueError):
        inference_step(model, 'head')


def test_peak_memory_cpu():
    # A fresh process: in a long test session the allocator may hand back
    # pages that earlier tests left resident, and the RSS would not grow.
    code = textwrap.dedent("""
        import torch
        from mmdet_pep_tools.memory import PeakMemory
        with PeakMemory(torch.device('cpu')) as memory:
            block = torch.ones(2**24)  # 64 MiB, touched
            del block
        assert set(memory.as_dict()) == {'peak_mb', 'baseline_mb', 'method'}
        print(memory.peak_mb, memory.baseline_mb, memory.method)
    """)
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout.split()
    peak_mb, baseline_mb = float(out[0]), float(out[1])
    assert peak_mb > 48
    assert baseline_mb > 0
    assert 'main process' in ' '.join(out[2:])


def test_step_timer_hook(monkeypatch):
    # The hook reads ``time.perf_counter`` of its module; a fake clock there
    # moves only by what each step says it took.
    clock = FakeClock()
    monkeypatch.setattr(benchmark, 'time',
                        SimpleNamespace(perf_counter=clock))
    hook = StepTimerHook()
    assert hook.priority == 'HIGHEST'
    runner = SimpleNamespace(model=torch.nn.Linear(2, 2))
    for i, seconds in enumerate((0.2, 0.01, 0.03, 0.02)):
        clock.now += 5.  # between iterations: data loading, other hooks
        hook.before_train_iter(runner, i)
        clock.now += seconds
        hook.after_train_iter(runner, i)
    assert hook.times == pytest.approx([0.2, 0.01, 0.03, 0.02])
    stats = hook.summary(num_warmup=1)
    assert stats['num_calls'] == 3 and stats['num_warmup'] == 1
    assert stats['median_ms'] == pytest.approx(20.)
    assert stats['min_ms'] == pytest.approx(10.)
    assert stats['max_ms'] == pytest.approx(30.)
    assert 'fps' not in stats
    with pytest.raises(ValueError):
        hook.summary(num_warmup=4)


@pytest.fixture
def keep_threads():
    """The tools set torch's thread count; other tests keep theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_benchmark_cpu_synthetic_input(tmp_path, keep_threads):
    tool = load_tool('analysis_tools/benchmark_cpu')
    out = str(tmp_path / 'bench.json')
    report = tool.main([
        PEP_CONFIG, '--device', 'cpu', '--threads', '1', '--input-size', '64',
        '96', '--max-iter', '4', '--num-warmup', '1', '--part', 'full',
        'floor', '--out', out, '--work-dir',
        str(tmp_path / 'wd')
    ])
    with open(out) as f:
        saved = json.load(f)
    assert saved['input'] == [64, 96] and saved['threads'] == 1
    for part in ('full', 'floor'):
        overall = saved['parts'][part]['overall']
        assert overall['num_calls'] == 3
        assert overall['p10_ms'] <= overall['median_ms'] <= overall['p90_ms']
        assert len(saved['parts'][part]['runs'][0]['latencies_ms']) == 3
    assert saved['head_overhead_ms'] == pytest.approx(
        saved['parts']['full']['overall']['median_ms'] -
        saved['parts']['floor']['overall']['median_ms'])
    assert len(saved['peak_memory']) == 1
    assert report['parts']['full']['overall'] == saved['parts']['full'][
        'overall']
    assert osp.isfile(tmp_path / 'wd' / 'benchmark.log')


def test_benchmark_cpu_test_set(tmp_path, keep_threads):
    data_root = str(tmp_path / 'data') + '/'
    generate_coco_split(data_root, 'test', 3, image_size=64)
    tool = load_tool('analysis_tools/benchmark_cpu')
    report = tool.main([
        PEP_CONFIG, '--device', 'cpu', '--threads', '1', '--batch-size', '2',
        '--repeat-num', '2', '--max-iter', '3', '--num-warmup', '1', '--part',
        'floor', '--cfg-options',
        f'test_dataloader.dataset.data_root={data_root}'
    ])
    floor = report['parts']['floor']
    assert report['input'] == 'test dataloader'
    assert [len(run['latencies_ms']) for run in floor['runs']] == [2, 2]
    assert floor['overall']['num_calls'] == 4
    assert floor['overall']['images_per_call'] == 2
    pooled = np.concatenate([run['latencies_ms'] for run in floor['runs']])
    assert floor['overall']['median_ms'] == pytest.approx(np.median(pooled))
    assert len(report['peak_memory']) == 2


def test_benchmark_cpu_mosaic_of_test_images(tmp_path, keep_threads):
    data_root = str(tmp_path / 'data') + '/'
    generate_coco_split(data_root, 'test', 3, image_size=64)
    tool = load_tool('analysis_tools/benchmark_cpu')
    cfg = Config.fromfile(PEP_CONFIG)
    cfg.test_dataloader.dataset.data_root = data_root
    init_default_scope('mmdet')
    # 200 x 300: the pipeline's 128 px tiles, 2 rows x 3 columns, cut at
    # the border; the three images fill the first row and start over.
    batch = next(tool.mosaic_batches(cfg, 200, 300, 1))
    canvas = batch['inputs'][0]
    assert canvas.shape == (3, 200, 300) and canvas.dtype == torch.uint8
    tiles = [b['inputs'][0] for b in itertools.islice(
        tool.dataset_batches(cfg, 1), 3)]
    assert all(t.shape[-2:] == (128, 128) for t in tiles)
    assert torch.equal(canvas[:, :128, :128], tiles[0])
    assert torch.equal(canvas[:, :128, 128:256], tiles[1])
    assert torch.equal(canvas[:, :128, 256:], tiles[2][:, :, :44])
    assert torch.equal(canvas[:, 128:, :128], tiles[0][:, :72])
    assert batch['data_samples'][0].img_shape == (200, 300)

    report = tool.main([
        PEP_CONFIG, '--device', 'cpu', '--threads', '1', '--input-size',
        '200', '300', '--mosaic', '--max-iter', '2', '--num-warmup', '1',
        '--cfg-options', f'test_dataloader.dataset.data_root={data_root}'
    ])
    assert report['mosaic'] and report['input'] == [200, 300]
    assert len(report['detections_per_image']) == 1
    assert report['detections_per_image'][0] >= 0
    with pytest.raises(SystemExit):
        tool.parse_args([PEP_CONFIG, '--mosaic'])


def test_benchmark_cpu_init_weights_without_downloads(keep_threads):
    tool = load_tool('analysis_tools/benchmark_cpu')
    coco = Config.fromfile(
        osp.join(ROOT, 'configs/pep/pep_r50_fpn_1x_coco.py'))
    assert coco.model.backbone.init_cfg.type == 'Pretrained'
    model_cfg = copy.deepcopy(coco.model)
    tool._drop_pretrained(model_cfg)
    assert model_cfg.backbone.init_cfg is None
    assert 'Pretrained' not in str(model_cfg)
    # The head gets its own init (PEP's background prior), nothing is
    # fetched; the config passed in is left as it was.
    init_default_scope('mmdet')
    model = tool.build_model(coco, None, False, torch.device('cpu'),
                             init_weights=True)
    assert coco.model.backbone.init_cfg.type == 'Pretrained'
    assert model.mask_head.conv_cls.bias[-1].item() == pytest.approx(4.6)
    default = tool.build_model(coco, None, False, torch.device('cpu'))
    assert default.mask_head.conv_cls.bias[-1].item() != pytest.approx(4.6)
