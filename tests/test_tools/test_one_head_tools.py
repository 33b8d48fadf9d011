"""EmbedMask, SipMask and SpatialEmbeddings through the tools users run on
every method of the zoo: mmdet's ``DetInferencer`` and ``get_flops.py``,
and our latency tool."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
from pycocotools import mask as mask_utils

import mmdet
from mmdet.apis import DetInferencer
from mmdet.registry import MODELS
from mmdet_pep.datasets.synthetic import generate_coco_split, metainfo
from pep_testing import ROOT, load_tool
CONFIGS = {
    method: osp.join(ROOT, 'configs', folder,
                     f'{method}_r18_fpn_1200it_synthetic.py')
    for method, folder in (('embedmask', 'embedmask'),
                           ('sipmask', 'sipmask'),
                           ('spatialemb', 'spatial_embeddings'))
}
methods = pytest.mark.parametrize('method', sorted(CONFIGS))


@methods
def test_det_inferencer_predicts_and_draws(tmp_path, method):
    generate_coco_split(str(tmp_path / 'data'), 'val', 1, image_size=64)
    img = str(tmp_path / 'data' / 'val' / '000001.png')
    cfg = Config.fromfile(CONFIGS[method])
    # Keep every candidate, so that an untrained model draws something.
    if method == 'spatialemb':
        cfg.model.test_cfg.update(fg_thr=0., seed_thr=0., min_pixels=0)
    else:
        cfg.model.test_cfg.score_thr = 0.
    cfg.model.test_cfg.max_per_img = 5
    cfg_path = str(tmp_path / f'{method}.py')
    cfg.dump(cfg_path)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if method == 'sipmask':
        # Untrained boxes have no area and untrained masks no pixel above
        # 0.4: give the boxes a size and the masks a positive logit.
        with torch.no_grad():
            model.bbox_head.conv_reg.bias.fill_(1.)
            model.bbox_head.conv_coeff.bias.fill_(3.)
    if method == 'spatialemb':
        # Untrained seeds sit at 0.5: make every pixel foreground; each
        # centre's Gaussian (sigma 1 at start) is then a ~6 px disc.
        with torch.no_grad():
            model.mask_head.seed_decoder.output_conv.bias.fill_(3.)
    ckpt = str(tmp_path / f'{method}.pth')
    save_checkpoint(
        dict(
            meta=dict(dataset_meta=metainfo()),
            state_dict=weights_to_cpu(model.state_dict())), ckpt)

    inferencer = DetInferencer(
        model=cfg_path, weights=ckpt, device='cpu', show_progress=False)
    out_dir = tmp_path / 'out'
    results = inferencer(img, out_dir=str(out_dir), no_save_pred=False)
    vis = out_dir / 'vis' / '000001.png'
    assert vis.is_file() and vis.stat().st_size > 0
    (pred, ) = results['predictions']
    assert set(pred) == {'labels', 'scores', 'bboxes', 'masks'}
    assert len(pred['labels']) == 5
    assert all(mask['size'] == [64, 64] for mask in pred['masks'])
    masks = mask_utils.decode(
        [dict(m, counts=m['counts'].encode()) for m in pred['masks']])
    assert masks.any()
    # Real boxes, inside the image.
    for x1, y1, x2, y2 in pred['bboxes']:
        assert 0 <= x1 <= x2 <= 64 and 0 <= y1 <= y2 <= 64
    with open(out_dir / 'preds' / '000001.json') as f:
        assert json.load(f)['labels'] == pred['labels']


@methods
def test_mmdet_get_flops(tmp_path, method):
    data_root = str(tmp_path / 'data') + '/'
    generate_coco_split(data_root, 'val', 2, image_size=64)
    tool = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
        'get_flops.py')
    proc = subprocess.run(
        [
            sys.executable, tool, CONFIGS[method], '--num-images', '2',
            '--cfg-options', f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}'
        ],
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    flops = [line for line in proc.stdout.splitlines()
             if line.startswith('Flops:')]
    params = [line for line in proc.stdout.splitlines()
              if line.startswith('Params:')]
    assert flops and float(flops[0].split()[1].rstrip('G')) > 0
    assert params and float(params[0].split()[1].rstrip('M')) > 1


@methods
def test_benchmark_cpu_runs(tmp_path, method):
    tool = load_tool('analysis_tools/benchmark_cpu')
    threads = torch.get_num_threads()
    try:
        report = tool.main([
            CONFIGS[method], '--device', 'cpu', '--threads', '1',
            '--input-size',
            '64', '96', '--max-iter', '3', '--num-warmup', '1', '--part',
            'full', 'floor', '--work-dir',
            str(tmp_path / 'wd')
        ])
    finally:
        torch.set_num_threads(threads)
    for part in ('full', 'floor'):
        assert report['parts'][part]['overall']['num_calls'] == 2
        assert report['parts'][part]['overall']['median_ms'] > 0
    assert 'head_overhead_ms' in report
    assert osp.isfile(tmp_path / 'wd' / 'benchmark.log')
