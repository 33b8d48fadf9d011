"""Parity and speed of an exported model against PyTorch, with a result file.

    python tools/deploy/evaluate_onnx.py CONFIG CHECKPOINT --name PEP \
        [--split val] [--threads 2] [--out-dir docs/results/deploy]

1. Exports CONFIG + CHECKPOINT at the test pipeline's size (and, for the
   large-image latency, at --large-shape).
2. Runs PyTorch (``model.test_step``) and onnxruntime on every image of the
   split, feeds both into the config's evaluator (mmdet's CocoMetric) and
   compares the metrics and, image by image, the instances.
3. Times both round-robin in this one process (``measure_latency``: each
   image goes to PyTorch, then to onnxruntime), with the same number of
   threads, at the test size and at --large-shape (the images resized).

Writes ``OUT_DIR/NAME.json``.
"""
import argparse
import copy
import datetime
import os
import os.path as osp
import platform
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--name', required=True, help='result file name')
    parser.add_argument(
        '--split',
        default='val',
        choices=['val', 'test'],
        help='the split of the config\'s dataloaders to evaluate on')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--num-timed', type=int, default=50)
    parser.add_argument('--num-timed-large', type=int, default=10)
    parser.add_argument(
        '--large-shape', type=int, nargs=2, default=(800, 1333))
    parser.add_argument('--out-dir', default='docs/results/deploy')
    parser.add_argument('--work-dir', help='where the .onnx files go')
    parser.add_argument('--data-root', help='override the data root')
    return parser.parse_args(argv)


def _loader_cfg(cfg, split):
    return cfg.val_dataloader if split == 'val' else cfg.test_dataloader


def _build(cfg, split):
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(_loader_cfg(cfg, split))
    loader_cfg.batch_size = 1
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    loader = Runner.build_dataloader(loader_cfg)
    evaluator_cfg = cfg.val_evaluator if split == 'val' else cfg.test_evaluator
    return loader, evaluator_cfg


def _evaluator(evaluator_cfg, dataset):
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(copy.deepcopy(evaluator_cfg))
    evaluator.dataset_meta = dataset.metainfo
    return evaluator


def ort_samples(session, batch):
    """onnxruntime's predictions of a batch, as DetDataSamples at the
    original size."""
    from mmengine.structures import InstanceData

    from mmdet_pep.deploy.inferencer import rescale_instances
    samples = []
    for img, sample in zip(batch['inputs'], batch['data_samples']):
        outs = session(img.numpy())
        sample = copy.deepcopy(sample)
        sample.pred_instances = InstanceData(**rescale_instances(
            outs, sample.metainfo.get('scale_factor'),
            sample.metainfo['ori_shape']))
        samples.append(sample)
    return samples


def compare_instances(ref, got) -> dict:
    """Instance counts and the worst matched mask IoU of two predictions
    of one image (masks matched by IoU, Hungarian)."""
    from scipy.optimize import linear_sum_assignment
    n_ref, n_got = len(ref.scores), len(got.scores)
    out = dict(same_count=n_ref == n_got, worst_iou=1.0, worst_score=0.0)
    if n_ref == 0 or n_got == 0:
        out['worst_iou'] = 1.0 if n_ref == n_got else 0.0
        return out
    a = ref.masks.bool().flatten(1).float()
    b = got.masks.bool().flatten(1).float()
    inter = a @ b.t()
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), 1.)
    rows, cols = linear_sum_assignment(-iou.numpy())
    out['worst_iou'] = float(iou[rows, cols].min())
    out['worst_score'] = float(
        (ref.scores[rows].float() - got.scores[cols].float()).abs().max())
    return out


def cap_check(deploy, batch):
    """Whether a cap of the graph cut off something the eager head keeps on
    this image: SOLOv2's candidate cells, SpatialEmbeddings' centres per
    class, PEP's grouping iterations; None for heads without a cap."""
    from mmdet_pep.deploy.export import head_type
    head = head_type(deploy.detector)
    if head not in ('SOLOV2Head', 'SpatialEmbHead', 'PEPHead'):
        return None
    img = batch['inputs'][0][None].float()
    h, w = img.shape[-2:]
    with torch.no_grad():
        feats = deploy.detector.extract_feat(deploy.preprocess(img))
        if head == 'SOLOV2Head':
            from mmdet_pep.deploy.heads.solov2 import (MAX_CELLS,
                                                       num_candidate_cells)
            return num_candidate_cells(deploy.detector, feats) > MAX_CELLS
        if head == 'PEPHead':
            from mmdet_pep.deploy.heads.pep import cap_reached
        else:
            from mmdet_pep.deploy.heads.spatial_emb import cap_reached
        return cap_reached(deploy.detector, feats, h, w)


def large_batch(batch, shape):
    """``batch`` with its image resized to ``shape`` (H, W), as if the test
    pipeline had resized it there."""
    h, w = shape
    img = batch['inputs'][0][None].float()
    img = F.interpolate(img, size=(h, w), mode='bilinear',
                        align_corners=False)[0].round().clamp(0, 255)
    sample = copy.deepcopy(batch['data_samples'][0])
    sample.set_metainfo(
        dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
             pad_shape=(h, w), batch_input_shape=(h, w)))
    return dict(inputs=[img.to(torch.uint8)], data_samples=[sample])


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    from mmdet_pep.deploy import build_deploy_model, export_onnx
    from mmdet_pep.deploy.inferencer import OrtDetector
    from mmdet_pep_tools.benchmark import inference_step, measure_latency
    from mmdet_pep_tools.provenance import (code_commit, deploy_code_files,
                                            model_digest)
    from tools.deploy.export_onnx import test_scale

    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.data_root:
        for split, evaluator in (('val', cfg.val_evaluator),
                                 ('test', cfg.test_evaluator)):
            dataset = _loader_cfg(cfg, split).dataset
            dataset.data_root = args.data_root
            if 'ann_file' in evaluator:
                evaluator.ann_file = osp.join(args.data_root,
                                              dataset.ann_file)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='evaluate_onnx_')
    os.makedirs(work_dir, exist_ok=True)
    deploy = build_deploy_model(cfg, args.checkpoint)
    model = deploy.detector
    shape = test_scale(cfg) or (800, 1333)
    small = export_onnx(deploy, osp.join(work_dir, f'{args.name}.onnx'),
                        shape=shape)
    large = export_onnx(
        deploy, osp.join(work_dir, f'{args.name}_large.onnx'),
        shape=tuple(args.large_shape))
    # No spin-waiting: idle onnxruntime threads would take a core from
    # PyTorch, timed right after in the round-robin (measured: PEP's PyTorch
    # latency at 128 px doubled).
    session = OrtDetector(small, num_threads=args.threads, spin=False)
    session_large = OrtDetector(large, num_threads=args.threads, spin=False)

    loader, evaluator_cfg = _build(cfg, args.split)
    evaluators = {
        name: _evaluator(evaluator_cfg, loader.dataset)
        for name in ('pytorch', 'onnxruntime')
    }
    same, worst_iou, worst_score, batches, capped = 0, 1.0, 0.0, [], []
    for batch in loader:
        with torch.no_grad():
            ref = model.test_step(batch)
        got = ort_samples(session, batch)
        evaluators['pytorch'].process(data_samples=ref, data_batch=batch)
        evaluators['onnxruntime'].process(data_samples=got, data_batch=batch)
        for r, g in zip(ref, got):
            diff = compare_instances(r.pred_instances, g.pred_instances)
            same += diff['same_count']
            worst_iou = min(worst_iou, diff['worst_iou'])
            worst_score = max(worst_score, diff['worst_score'])
        batches.append(batch)
        capped.append(cap_check(deploy, batch))
    num = len(loader.dataset)
    metrics = {
        name: ev.evaluate(num)
        for name, ev in evaluators.items()
    }

    def ort_step(batch):
        return session(batch['inputs'][0].numpy())

    def ort_step_large(batch):
        return session_large(batch['inputs'][0].numpy())

    def cycle(items):
        while True:
            yield from items

    torch_step = inference_step(model)
    small_latency = measure_latency(
        dict(pytorch=torch_step, onnxruntime=ort_step), cycle(batches),
        num_iters=args.num_timed, num_warmup=5)
    large_batches = [
        large_batch(b, args.large_shape)
        for b in batches[:max(args.num_timed_large, 1)]
    ]
    large_latency = measure_latency(
        dict(pytorch=torch_step, onnxruntime=ort_step_large),
        cycle(large_batches),
        num_iters=args.num_timed_large,
        num_warmup=2)

    def timing(lat):
        out = {
            name: dict(
                median_ms=lat[name]['median_ms'],
                p10_ms=lat[name]['p10_ms'],
                p90_ms=lat[name]['p90_ms'],
                num_calls=lat[name]['num_calls'])
            for name in ('pytorch', 'onnxruntime')
        }
        out['ratio'] = (lat['onnxruntime']['median_ms'] /
                        lat['pytorch']['median_ms'])
        return out

    import onnxruntime
    files = deploy_code_files(cfg)
    keys = ('coco/segm_mAP', 'coco/bbox_mAP', 'coco/segm_crowded_mAP')
    result = dict(
        name=args.name,
        config=osp.relpath(osp.abspath(args.config), ROOT),
        # <variant>/<model>/seed<S>/<file> under compare.py's --work-dir
        checkpoint='/'.join(
            osp.abspath(args.checkpoint).split(osp.sep)[-4:]),
        # Of the config file as it is: init_detector edits cfg in place.
        model_digest=model_digest(Config.fromfile(args.config)),
        code_commit=code_commit(files, ROOT),
        split=args.split,
        num_images=num,
        shape=list(shape),
        large_shape=list(args.large_shape),
        metrics={
            name: {k: m[k]
                   for k in keys if k in m}
            for name, m in metrics.items()
        },
        mask_ap_diff=abs(metrics['pytorch']['coco/segm_mAP'] -
                         metrics['onnxruntime']['coco/segm_mAP']) * 100,
        images_same_count=same,
        worst_mask_iou=worst_iou,
        worst_score_diff=worst_score,
        # Images where a cap of the graph (SOLOv2's candidate cells,
        # SpatialEmbeddings' centres per class, PEP's grouping iterations)
        # cut off what eager keeps;
        # None: the head's graph has no cap.
        images_capped=(None if capped[0] is None else sum(capped)),
        latency={
            f'{shape[0]}x{shape[1]}': timing(small_latency),
            f'{args.large_shape[0]}x{args.large_shape[1]}':
            timing(large_latency),
        },
        threads=args.threads,
        machine=f'{platform.machine()}, {args.threads} threads',
        torch=torch.__version__,
        onnxruntime=onnxruntime.__version__,
        date=datetime.date.today().isoformat())
    import json
    os.makedirs(args.out_dir, exist_ok=True)
    out = osp.join(args.out_dir, f'{args.name}.json')
    with open(out, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f'[evaluate_onnx] {args.name}: mask AP PyTorch '
          f'{metrics["pytorch"]["coco/segm_mAP"] * 100:.1f} vs onnxruntime '
          f'{metrics["onnxruntime"]["coco/segm_mAP"] * 100:.1f}; '
          f'{same}/{num} images with the same instance count; latency ratio '
          + ', '.join(f'{k} {v["ratio"]:.2f}'
                      for k, v in result['latency'].items()) + f' -> {out}')


if __name__ == '__main__':
    main()
