"""What the generated tables are built from: the current runs of
``docs/results`` (judged as ``compare.py``'s protocol judges them), the
current latency files, the current ONNX results and the video runs of
``docs/results_vis`` (judged as ``compare_vis.py`` judges them).
"""
import argparse
import os.path as osp

from mmengine.config import Config

from . import ROOT, protocol, vis_protocol
from .deploy_table import load_deploy
from .provenance import model_digest
from .results import load_latencies
from .specs import default_specs

RESULTS_DIR, LATENCY_DIR = 'docs/results', 'docs/results/latency'
#: The variants of the zoo's and the config READMEs' tables. ``crowded``
#: (tiny objects in dense clusters) is a diagnostic set for PEP's
#: mechanisms, shown in its own table (:mod:`.displaced_table`).
ZOO_VARIANTS = ('demo', 'dense')


def protocol_args(root: str) -> argparse.Namespace:
    """``compare.py``'s defaults for the protocol on ``root``'s results."""
    return argparse.Namespace(
        results_dir=osp.join(root, RESULTS_DIR), variants=[],
        data_dir='data', cfg_options=None, max_iters=None,
        work_dir='work_dirs/comparison')


def load_state(root: str) -> dict:
    """The current runs of ``<root>/docs/results`` and the current latency
    files, judged as the protocol judges them.

    Returns:
        dict: ``runs`` (name -> current test-split runs on the
        :data:`ZOO_VARIANTS`), ``other_runs`` (those on other variants),
        ``configs`` (name
        -> config path relative to the repository), ``latency`` (name ->
        current latency file), ``stale`` (count), ``fingerprints`` (cache
        for :func:`.protocol.results_table`), ``deploy`` (the ONNX
        results) and ``vis`` (:func:`.vis_protocol.judge`).
    """
    fingerprints = {}
    judged = protocol.judge_results(default_specs(), protocol_args(root),
                                    fingerprints)
    runs, other_runs = {}, {}
    for r in judged['current']:
        if r.get('split') == 'test':
            (runs if r['variant'] in ZOO_VARIANTS else other_runs).setdefault(
                r['name'], []).append(r)
    configs = {
        s.name: osp.relpath(osp.abspath(s.config), ROOT)
        for s in judged['specs']
    }
    latency = {}
    for name, lat in load_latencies(osp.join(root, LATENCY_DIR)).items():
        path = osp.join(ROOT, lat['config'])
        if not osp.isfile(path):
            continue
        cfg = Config.fromfile(path)
        commit = protocol.fingerprint(cfg)[1]
        if (lat['code_commit'] == commit and not commit.endswith('+dirty')
                and lat['model_digest'] == model_digest(cfg)):
            latency[name] = lat
    return dict(runs=runs, other_runs=other_runs, configs=configs,
                latency=latency,
                deploy=load_deploy(root), stale=len(judged['stale']),
                fingerprints=fingerprints,
                vis=vis_protocol.judge(root, {}))
