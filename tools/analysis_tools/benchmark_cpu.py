"""Inference speed on the CPU or a GPU, as per-image latency statistics.

mmdet's ``tools/analysis_tools/benchmark.py --task inference`` needs CUDA
and reports one mean FPS. This tool takes the same arguments where they
apply, runs on the CPU too, times every batch on its own, leaves the
warm-up out and reports the median, 10th/90th percentiles and mean of the
per-image latency and the FPS. ``--part floor`` times only the data
preprocessor, backbone and neck (``model.extract_feat``) at the same input:
the floor under every head on that backbone and neck. ``--part full floor``
times both on the same batches, one right after the other, so the head's
share (full - floor) is visible.

Example::

    python tools/analysis_tools/benchmark_cpu.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        --checkpoint work_dirs/demo/iter_1200.pth --device cpu --threads 2 \\
        --max-iter 105 --num-warmup 5 --part full floor --out bench.json
"""
import argparse
import copy
import itertools
import json
import logging
import os.path as osp
import time

import numpy as np
import torch
from mmcv.cnn import fuse_conv_bn
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger, print_log
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import mkdir_or_exist

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet_pep_tools.benchmark import (PARTS, cycle, device_name,
                                       inference_step, measure_latency,
                                       summarize_latencies)
from mmdet_pep_tools.memory import PeakMemory


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='MMDet inference benchmark on the CPU or a GPU')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        '--checkpoint',
        help='checkpoint file; without one the randomly initialised model is '
        'timed, whose post-processing (which depends on how many detections '
        'pass the score threshold) may take a different time')
    parser.add_argument(
        '--init-weights',
        action='store_true',
        help='without --checkpoint: initialise the model with its '
        'init_weights() (pretrained weights are not loaded: nothing is '
        'downloaded), so classifiers start from their prior (p ~ 0.01) and '
        'few candidates pass the score threshold. Without it the layers keep '
        'PyTorch\'s default initialisation, where about half the class '
        'logits pass: mmdet\'s SOLOv2 then computes a full-resolution mask '
        'for each of them (at 800x1333, R-50: 82k masks, 1.4 TMAC and 16 '
        'GiB) and does not finish')
    parser.add_argument(
        '--task',
        choices=['inference'],
        default='inference',
        help='only inference: mmdet\'s benchmark.py already times the '
        'data loader and data set on the CPU')
    parser.add_argument(
        '--repeat-num',
        type=int,
        default=1,
        help='number of repeat times of measurement; the report pools the '
        'timed images of all repeats and lists each repeat too')
    parser.add_argument(
        '--max-iter',
        type=int,
        default=2000,
        help='batches per repeat, warm-up included (as in mmdet); the data '
        'loader starts over when it runs out')
    parser.add_argument(
        '--log-interval', type=int, default=50, help='interval of logging')
    parser.add_argument(
        '--num-warmup',
        type=int,
        default=5,
        help='number of leading batches run but not timed')
    parser.add_argument(
        '--fuse-conv-bn',
        action='store_true',
        help='Whether to fuse conv and bn, this will slightly increase'
        'the inference speed')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run on (default: cuda when available)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images per batch; latencies are per image (batch time / '
        'batch size)')
    parser.add_argument(
        '--threads',
        type=int,
        help='torch.set_num_threads for CPU ops (default: torch\'s own)')
    parser.add_argument(
        '--input-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='time one random uint8 image of this size, fed to the data '
        'preprocessor as the data loader would, instead of the test set. '
        'A trained model finds few objects in noise, so its post-processing '
        'is cheaper than on real images: see --mosaic')
    parser.add_argument(
        '--mosaic',
        action='store_true',
        help='with --input-size: tile the test set\'s images (as its '
        'pipeline makes them) into each input instead of noise, so that '
        'objects keep the size the model was trained on and a trained '
        'model finds as many per area as on the test set: a realistic '
        'number of candidates at a large input size')
    parser.add_argument(
        '--part',
        nargs='+',
        choices=PARTS,
        default=['full'],
        help='full: the whole detector (model.test_step); floor: data '
        'preprocessor + backbone + neck (model.extract_feat). Several parts '
        'are timed on the same batches')
    parser.add_argument(
        '--out', help='write the results (with every latency) to this JSON')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing '
        'benchmark metrics')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.mosaic and not args.input_size:
        parser.error('--mosaic tiles test images into --input-size: give it')
    if args.max_iter <= args.num_warmup:
        parser.error(f'--max-iter ({args.max_iter}) must exceed --num-warmup '
                     f'({args.num_warmup}): it includes the warm-up')
    for name in ('repeat_num', 'batch_size', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def build_model(cfg, checkpoint, fuse, device, init_weights=False):
    """The detector of ``cfg`` in eval mode on ``device``.

    Without a checkpoint the layers keep PyTorch's default initialisation,
    or with ``init_weights`` get the model's own, without the pretrained
    weights of ``init_cfg=dict(type='Pretrained', ...)`` anywhere (they
    could only be downloaded).
    """
    if init_weights and not checkpoint:
        cfg = copy.deepcopy(cfg)
        _drop_pretrained(cfg.model)
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    elif init_weights:
        model.init_weights()
    if fuse:
        model = fuse_conv_bn(model)
    return model.to(device).eval()


def synthetic_batches(height, width, batch_size):
    """The same batch of random images forever, packed like PackDetInputs.

    Args:
        height (int): Image height.
        width (int): Image width.
        batch_size (int): Images per batch.

    Returns:
        Iterator[dict]: Batches with ``inputs`` and ``data_samples``.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(
            0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
        for _ in range(batch_size)
    ]
    return itertools.repeat(
        dict(inputs=inputs, data_samples=_samples(height, width, batch_size)))


def _samples(height, width, batch_size):
    """Data samples of ``batch_size`` unscaled images of one size."""
    return [
        DetDataSample(
            metainfo=dict(
                img_id=i,
                ori_shape=(height, width),
                img_shape=(height, width),
                scale_factor=(1., 1.))) for i in range(batch_size)
    ]


def mosaic_batches(cfg, height, width, batch_size):
    """The same batch forever, each image a mosaic of test images.

    The test loader's images (after its pipeline) are pasted row by row,
    left to right, into ``height x width`` canvases (the last row and
    column cut at the border); the images run out only if the test set is
    smaller than one canvas, then they start over.

    Returns:
        Iterator[dict]: Batches with ``inputs`` and ``data_samples``.
    """
    tiles = dataset_batches(cfg, 1)
    inputs = []
    for _ in range(batch_size):
        canvas = torch.zeros((3, height, width), dtype=torch.uint8)
        y = 0
        while y < height:
            x, row_h = 0, 0
            while x < width:
                tile = next(tiles)['inputs'][0]
                h, w = tile.shape[-2:]
                h, w = min(h, height - y), min(w, width - x)
                canvas[:, y:y + h, x:x + w] = tile[:, :h, :w]
                x, row_h = x + w, max(row_h, h)
            y += row_h
        inputs.append(canvas)
    return itertools.repeat(
        dict(inputs=inputs, data_samples=_samples(height, width, batch_size)))


def _drop_pretrained(node) -> None:
    """Remove every ``init_cfg`` of type ``Pretrained`` from a config."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        elif isinstance(init_cfg, list):
            node['init_cfg'] = [
                c for c in init_cfg
                if not (isinstance(c, dict) and c.get('type') == 'Pretrained')
            ] or None
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, list):
        for item in node:
            _drop_pretrained(item)


def dataset_batches(cfg, batch_size):
    """Batches of the test data loader, starting over when it runs out.

    One process loads the data (``num_workers=0``, as mmdet's benchmark
    does: workers would compete with the model for the CPU), and loading is
    outside the timed region. Incomplete last batches are dropped so every
    batch holds ``batch_size`` images.
    """
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(
        batch_size=batch_size,
        num_workers=0,
        persistent_workers=False,
        drop_last=True)
    return cycle(Runner.build_dataloader(loader_cfg))


def pool_runs(runs, batch_size):
    """Statistics over the timed images of all repeats of one part."""
    per_image_ms = np.concatenate([run['latencies_ms'] for run in runs])
    return summarize_latencies(per_image_ms * batch_size / 1000., batch_size)


def main(argv=None):
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))

    log_file = None
    if args.work_dir:
        mkdir_or_exist(args.work_dir)
        log_file = osp.join(args.work_dir, 'benchmark.log')
    # A fresh logger instance per call: MMLogger.get_instance returns an
    # existing instance of the same name as it is, so a second run in one
    # process would log into the first run's file.
    logger = MMLogger.get_instance(
        f'benchmark_cpu_{time.time_ns()}',
        logger_name='mmdet',
        log_file=log_file,
        log_level='INFO')

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model(cfg, args.checkpoint, args.fuse_conv_bn, device,
                        args.init_weights)
    if args.checkpoint is None:
        print_log(
            'No --checkpoint: timing randomly initialised weights '
            f'({"init_weights()" if args.init_weights else "PyTorch default"}'
            ').',
            logger,
            level=logging.WARNING)
    if args.mosaic:
        batches = mosaic_batches(cfg, *args.input_size, args.batch_size)
    elif args.input_size:
        batches = synthetic_batches(*args.input_size, args.batch_size)
    else:
        batches = dataset_batches(cfg, args.batch_size)
    steps = {part: inference_step(model, part) for part in args.part}

    runs = {part: [] for part in args.part}
    memory = []
    for _ in range(args.repeat_num):
        with PeakMemory(device) as mem:
            result = measure_latency(
                steps,
                batches,
                num_iters=args.max_iter - args.num_warmup,
                num_warmup=args.num_warmup,
                images_per_call=args.batch_size,
                device=device,
                log_interval=args.log_interval,
                logger=logger)
        memory.append(mem.as_dict())
        for part in args.part:
            runs[part].append(result[part])

    # What the timed images yield: the work of post-processing grows with it.
    with torch.no_grad():
        detections = [
            len(sample.pred_instances)
            for sample in model.test_step(next(batches))
        ]
    report = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        device=str(device),
        device_name=device_name(device),
        threads=torch.get_num_threads(),
        batch_size=args.batch_size,
        input=(list(args.input_size)
               if args.input_size else 'test dataloader'),
        mosaic=args.mosaic,
        detections_per_image=detections,
        fuse_conv_bn=args.fuse_conv_bn,
        init_weights=args.init_weights and not args.checkpoint,
        max_iter=args.max_iter,
        num_warmup=args.num_warmup,
        repeat_num=args.repeat_num,
        torch_version=torch.__version__,
        parts={
            part:
            dict(
                overall=pool_runs(part_runs, args.batch_size), runs=part_runs)
            for part, part_runs in runs.items()
        },
        peak_memory=memory)

    print_log('============== Done ==================', logger)
    print_log(f'detections per image of the first batch: {detections}',
              logger)
    for part, res in report['parts'].items():
        s = res['overall']
        print_log(
            f'[{part}] median {s["median_ms"]:.2f} ms/img '
            f'(p10 {s["p10_ms"]:.2f}, p90 {s["p90_ms"]:.2f}), '
            f'mean {s["mean_ms"]:.2f} ms/img, {s["fps"]:.1f} img/s over '
            f'{s["num_calls"] * s["images_per_call"]} images; '
            f'{report["device"]}, {report["threads"]} threads, '
            f'batch {args.batch_size}', logger)
    if {'full', 'floor'} <= set(args.part):
        overhead = (
            report['parts']['full']['overall']['median_ms'] -
            report['parts']['floor']['overall']['median_ms'])
        report['head_overhead_ms'] = overhead
        print_log(
            f'head and post-processing over the floor: '
            f'{overhead:.2f} ms/img (difference of medians)', logger)
    for i, mem in enumerate(memory):
        print_log(
            f'repeat {i}: peak memory +{mem["peak_mb"]:.1f} MiB over '
            f'{mem["baseline_mb"]:.1f} MiB ({mem["method"]})', logger)

    if args.out:
        mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print_log(f'results written to {args.out}', logger)
    return report


if __name__ == '__main__':
    main()
