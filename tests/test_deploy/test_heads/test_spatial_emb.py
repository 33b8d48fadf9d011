"""SpatialEmbeddings exports to ONNX with its greedy clustering (a loop of
``T`` unrolled centres per class, :mod:`mmdet_pep.deploy.heads.spatial_emb`)
and onnxruntime returns the eager model's instances (issue #40's parity
criteria), at a fixed and a free input size; the static clustering is
:func:`greedy_cluster` bit for bit on random maps; with a cap below the
number of centres the eager clustering tries, the graph returns the
instances of the first ``T`` centres of each class, the eager head's with
``max_centres = T``. The zoo's config exports and runs as well."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict

from deploy_testing import (check_parity, compare, eager, run_config, scenes,
                            trained)
from pep_testing import SCENE_SIZE, tiny_spatialemb_cfg

CONFIG = 'configs/spatial_embeddings/spatialemb_r18_fpn_1200it_synthetic.py'
# Adam steps (lr 1e-2) after which the tiny model, trained on the scene
# and on the blank background as a negative, finds all 6 objects of the
# scene and nothing on the blank (~16 s).
STEPS, LR = 300, 1e-2
# Centres tried per class in the capped graph: fewer than the scene's
# squares need.
CAP = 2


@pytest.fixture(scope='module')
def model():
    cfg = tiny_spatialemb_cfg()
    # Confident centres and no specks, and the blank background trained
    # as a negative: it gives none.
    cfg['test_cfg'] = dict(cfg['test_cfg'], seed_thr=0.9, min_pixels=20)
    model = trained(cfg, steps=STEPS, lr=LR, negative=True)
    images = scenes()
    assert len(eager(model, images['scene']).scores) >= 4
    assert len(eager(model, images['blank']).scores) == 0
    return model


def variant(model, **test_cfg):
    """``model`` with other test settings (the same weights)."""
    model = copy.deepcopy(model)
    model.mask_head.test_cfg.update(test_cfg)
    return model


@pytest.mark.parametrize('n_sigma', [1, 2])
@pytest.mark.parametrize(
    'mask_thr, min_pixels, min_unclaimed',
    [(0.5, 3, 0.5), (0.3, 10, 0.3), (0.8, 3, 0.5), (1.0, 3, 0.5)])
def test_cluster_static_is_greedy_cluster(n_sigma, mask_thr, min_pixels,
                                          min_unclaimed):
    """Overlapping proposals, rejected ones, tied seeds and non-finite
    pixels: the same instances in the same order, and with T steps those
    of ``greedy_cluster(..., max_centres=T)``."""
    from mmdet_pep.deploy.heads.spatial_emb import cluster_static
    from mmdet_pep.models.dense_heads.spatial_emb_head import greedy_cluster

    torch.manual_seed(0)
    cfg = ConfigDict(
        seed_thr=0.6,
        fg_thr=0.3,
        mask_thr=mask_thr,
        min_pixels=min_pixels,
        min_unclaimed=min_unclaimed)
    num_cls, num_pixels = 3, 300
    for trial in range(6):
        embeddings = torch.rand(2, num_pixels)
        bandwidths = torch.exp(torch.empty(n_sigma, num_pixels).uniform_(2, 5))
        seeds = torch.rand(num_cls, num_pixels)
        if trial % 2:
            seeds = (seeds * 4).round() / 4  # ties
            embeddings[0, :5] = float('nan')
        fg = (seeds > cfg.fg_thr) & torch.isfinite(embeddings).all(0)
        for steps in (num_pixels, 3):
            found = cluster_static(embeddings, bandwidths, seeds, fg, cfg,
                                   steps)
            # Each centre claims a pixel: P steps finish every class; 3
            # do not, on these maps.
            assert bool(found['active'].any()) == (steps == 3)
            for label in range(num_cls):
                pixels = fg[label].nonzero()[:, 0]
                masks, scores = greedy_cluster(
                    embeddings[:, pixels], bandwidths[:, pixels],
                    seeds[label, pixels], cfg.seed_thr, mask_thr, min_pixels,
                    min_unclaimed, steps)
                full = masks.new_zeros((len(masks), num_pixels))
                full[:, pixels] = masks
                mine = found['valid'] & (found['labels'] == label)
                assert torch.equal(found['masks'][mine], full)
                assert torch.equal(found['scores'][mine], scores)


def test_parity(model, tmp_path):
    report = check_parity(model, tmp_path)
    assert report['scene']['num'] >= 4, report
    assert report['blank']['num'] == 0, report


def test_parity_of_a_graph_traced_on_an_empty_image(model, tmp_path):
    """Traced where no pixel is foreground (the clustering sees the one
    spare pixel only), the graph still finds the scene's instances."""
    report = check_parity(model, tmp_path, example='blank')
    assert report['scene']['num'] >= 1, report


def test_parity_dynamic_size(model, tmp_path):
    """One graph for 64 x 64 and 64 x 96 inputs."""
    report = check_parity(model, tmp_path, dynamic=True)
    assert report['non_square']['num'] >= 4, report


def test_cap_keeps_the_first_centres_of_each_class(model, tmp_path):
    """With ``deploy_max_centres`` = CAP the graph is the eager head with
    ``max_centres`` = CAP: the instances of the first CAP centres of each
    class, a subset of the uncapped eager instances, and
    :func:`cap_reached` says that the cap cut the clustering off."""
    from mmdet_pep.deploy import DeployModel, export_onnx
    from mmdet_pep.deploy.heads.spatial_emb import (cap_reached,
                                                    spatial_emb_postprocess)
    from mmdet_pep.deploy.inferencer import OrtDetector

    image = scenes()['scene']
    full = eager(model, image)
    first = eager(variant(model, max_centres=CAP), image)
    assert 0 < len(first.scores) < len(full.scores)
    # The first centres' instances are among the uncapped ones, in the
    # order found (decreasing scores within a class).
    for mask, label in zip(first.masks, first.labels):
        same = (full.masks == mask).flatten(1).all(1) & (full.labels == label)
        assert same.any()

    capped = variant(model, deploy_max_centres=CAP)
    deploy = DeployModel(capped, spatial_emb_postprocess)
    out = str(tmp_path / 'capped.onnx')
    export_onnx(deploy, out, shape=(SCENE_SIZE, SCENE_SIZE))
    report = compare(first, OrtDetector(out, num_threads=1)(image))
    assert report['num'] == len(first.scores)

    inputs = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        feats = capped.extract_feat(DeployModel(capped, None).preprocess(
            inputs))
        assert cap_reached(capped, feats, SCENE_SIZE, SCENE_SIZE)
        assert not cap_reached(model, feats, SCENE_SIZE, SCENE_SIZE)


def test_config_exports_and_runs(tmp_path):
    """The zoo's config, randomly initialised, through the exporter's API
    and onnxruntime."""
    deploy, outs = run_config(CONFIG, tmp_path, scenes()['scene'])
    num = len(outs['scores'])
    cap = deploy.detector.mask_head.test_cfg.max_per_img
    assert num <= cap
    assert outs['boxes'].shape == (num, 4)
    assert outs['labels'].shape == (num, )
    assert outs['masks'].shape == (num, SCENE_SIZE, SCENE_SIZE)
