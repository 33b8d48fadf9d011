"""The generated table of docs/deploy.md, and the README's ONNX Runtime
column: the current results of ``tools/deploy/evaluate_onnx.py`` (mask AP
of one checkpoint in PyTorch and in onnxruntime, and both latencies).
"""
import json
import os
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from . import ROOT
from .provenance import code_commit, deploy_code_files, model_digest
from .results_table import markdown_row

DEPLOY_DIR = 'docs/results/deploy'
MASK = 'coco/segm_mAP'
DASH = '—'


def load_deploy(root: str) -> Dict[str, dict]:
    """The current result files of ``tools/deploy/evaluate_onnx.py``
    (name -> result): same model digest, and no commit since to the model's
    code or to ``mmdet_pep.deploy``."""
    folder = osp.join(root, DEPLOY_DIR)
    found = {}
    if not osp.isdir(folder):
        return found
    for file in sorted(os.listdir(folder)):
        if not file.endswith('.json'):
            continue
        with open(osp.join(folder, file)) as f:
            result = json.load(f)
        path = osp.join(ROOT, result['config'])
        if not osp.isfile(path):
            continue
        cfg = Config.fromfile(path)
        commit = code_commit(deploy_code_files(cfg), ROOT)
        if (result['code_commit'] == commit and not commit.endswith('+dirty')
                and result['model_digest'] == model_digest(cfg)):
            found[result['name']] = result
    return found


def ort_cell(result: Optional[dict]) -> str:
    """onnxruntime's median latency at the training size and its ratio to
    PyTorch, from an ``evaluate_onnx.py`` result."""
    if not result:
        return DASH
    timing = result['latency']['x'.join(map(str, result['shape']))]
    return (f'{timing["onnxruntime"]["median_ms"]:.1f} '
            f'({timing["ratio"]:.2f}×)')


def deploy_block(state: dict) -> str:
    """docs/deploy.md's table: per zoo model, mask AP from PyTorch and from
    onnxruntime on the same checkpoint and split, and both latencies."""
    if not state['deploy']:
        return 'No current result of `tools/deploy/evaluate_onnx.py` yet.\n'
    lines = [
        markdown_row(['Model', 'checkpoint', 'split', 'mask AP PyTorch',
              'mask AP ORT', 'same count', 'capped', 'size',
              'PyTorch (ms)', 'ORT (ms)', 'ORT / PyTorch']),
        '|' + '|'.join([':---'] * 3 + ['---:'] * 8) + '|'
    ]
    machines = set()
    for name, result in sorted(state['deploy'].items()):
        machines.add(result['machine'])
        metrics = result['metrics']
        for i, (size, timing) in enumerate(result['latency'].items()):
            first = [
                name, f'`{result["checkpoint"]}`',
                f'{result["split"]} ({result["num_images"]})',
                f'{metrics["pytorch"][MASK] * 100:.1f}',
                f'{metrics["onnxruntime"][MASK] * 100:.1f}',
                f'{result["images_same_count"]}/{result["num_images"]}',
                DASH if result.get('images_capped') is None else str(
                    result['images_capped'])
            ] if i == 0 else [''] * 7
            lines.append(markdown_row(first + [
                size.replace('x', ' × '),
                f'{timing["pytorch"]["median_ms"]:.1f}',
                f'{timing["onnxruntime"]["median_ms"]:.1f}',
                f'{timing["ratio"]:.2f}'
            ]))
    lines += [
        '', 'mask AP (%) of the same checkpoint through mmdet\'s evaluator; '
        '"same count": images where both return the same number of '
        'instances; "capped": images where a cap of the graph cut off what '
        'PyTorch keeps. Latency: median per image, batch 1, the two '
        'backends timed round-robin in one process with the same threads; '
        'the large size is the split\'s images resized. Machine: ' +
        ', '.join(sorted(machines)) + '. Built by '
        '`tools/analysis_tools/build_tables.py` from the current files in '
        '`docs/results/deploy/`.'
    ]
    return '\n'.join(lines) + '\n'
