"""Helpers of the export tests: a tiny model trained on the crowded scene
until it predicts instances, its eager predictions, and the parity check
of an exported graph against them (issue #40's criteria)."""
import os.path as osp

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from pep_testing import ROOT, SCENE_SIZE, crowded_scene, pack

from mmdet_pep.models.utils.misc import masks_to_boxes

# An image config that builds without a checkpoint (its score_thr 0 keeps
# detections coming), and a video config, which must not export.
TINY_CONFIG = osp.join(ROOT, 'configs/pep/pep_r18_fpn_tiny_synthetic.py')
VIDEO_CONFIG = osp.join(
    ROOT, 'configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py')

# Issue #40's parity criteria.
MIN_MASK_IOU, MAX_SCORE_DIFF, MAX_BOX_DIFF = 0.99, 1e-3, 1.0


def trained(cfg: dict,
            steps: int,
            lr: float = 3e-3,
            seed: int = 0,
            negative: bool = False):
    """``cfg`` built with ``seed`` and fitted to :func:`crowded_scene` for
    ``steps`` Adam steps, in eval mode. With ``negative``, every step also
    takes the loss of :func:`scenes`'s blank background, without instances:
    a model that must give nothing there learns it, instead of depending
    on how one image's fit generalises (which varies with the CPU's
    kernels). (Module-scoped fixtures call it before conftest's per-test
    registration: it registers itself.)"""
    import mmdet_pep  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    image, labels, masks = crowded_scene()
    batches = [pack(model, image, labels, masks, training=True)]
    if negative:
        batches.append(
            pack(model, scenes()['blank'], labels[:0], masks[:0],
                 training=True))
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = sum(
            sum(model(**data, mode='loss').values()) for data in batches)
        optim.zero_grad()
        loss.backward()
        optim.step()
    return model.eval()


def scenes():
    """The parity images, (H, W, 3) uint8 BGR: the crowded scene, the scene
    flipped and darkened, and the empty background (no instance)."""
    image = crowded_scene()[0]
    flipped = np.ascontiguousarray(image[:, ::-1] * 0.9).astype(np.uint8)
    blank = np.full_like(image, 40)
    return dict(scene=image, flipped=flipped, blank=blank)


def non_square(image: np.ndarray, size=(64, 96)) -> np.ndarray:
    """``image`` on a background canvas of ``size`` (H, W)."""
    canvas = np.full((*size, 3), 40, np.uint8)
    h, w = min(size[0], image.shape[0]), min(size[1], image.shape[1])
    canvas[:h, :w] = image[:h, :w]
    return canvas


def eager(model, image: np.ndarray):
    """The PyTorch model's instances of ``image`` at its own size."""
    h, w = image.shape[:2]
    sample = DetDataSample(
        metainfo=dict(
            img_id=0,
            img_shape=(h, w),
            ori_shape=(h, w),
            scale_factor=(1.0, 1.0)))
    inputs = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    data = model.data_preprocessor(
        dict(inputs=[inputs], data_samples=[sample]), False)
    with torch.no_grad():
        return model(**data, mode='predict')[0].pred_instances


def compare(ref, outs: dict, boxes_from_masks: bool = False) -> dict:
    """Match the graph's instances ``outs`` to the eager ones ``ref`` by
    mask IoU (Hungarian) and assert issue #40's criteria.

    Args:
        ref (InstanceData): Eager ``scores``, ``labels``, ``masks``,
            ``bboxes``.
        outs (dict): The graph's ``boxes``, ``scores``, ``labels``,
            ``masks`` (numpy).
        boxes_from_masks (bool): The eager boxes are placeholders (SOLOv2
            writes zeros): compare with the boxes of the eager masks.

    Returns:
        dict: ``num``, the worst ``mask_iou``, ``score_diff``, ``box_diff``.
    """
    num = len(ref.scores)
    assert len(outs['scores']) == num, (
        f'{len(outs["scores"])} instances from the graph, {num} eager')
    for key, shape in (('boxes', (num, 4)), ('labels', (num, )),
                       ('masks', (num, *ref.masks.shape[1:]))):
        assert tuple(outs[key].shape) == shape, (key, outs[key].shape, shape)
    if num == 0:
        return dict(num=0, mask_iou=1.0, score_diff=0.0, box_diff=0.0)
    ref_masks = ref.masks.bool().flatten(1).float()
    masks = torch.from_numpy(outs['masks']).bool()
    got = masks.flatten(1).float()
    inter = ref_masks @ got.t()
    union = ref_masks.sum(1)[:, None] + got.sum(1)[None] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), 1.)
    score_gap = (ref.scores[:, None].float() -
                 torch.from_numpy(outs['scores'])[None]).abs()
    # Masks first; among equal masks (duplicates), the closer score.
    rows, cols = linear_sum_assignment(-(iou - score_gap).numpy())
    ref_boxes = (masks_to_boxes(ref.masks.bool())
                 if boxes_from_masks else ref.bboxes.float())
    boxes = torch.from_numpy(outs['boxes'])
    worst = dict(num=num, mask_iou=1.0, score_diff=0.0, box_diff=0.0)
    for r, c in zip(rows, cols):
        worst['mask_iou'] = min(worst['mask_iou'], float(iou[r, c]))
        worst['score_diff'] = max(worst['score_diff'],
                                  float(score_gap[r, c]))
        worst['box_diff'] = max(worst['box_diff'],
                                float((ref_boxes[r] - boxes[c]).abs().max()))
        assert int(ref.labels[r]) == int(outs['labels'][c]), (r, c)
    assert worst['mask_iou'] >= MIN_MASK_IOU, worst
    assert worst['score_diff'] <= MAX_SCORE_DIFF, worst
    assert worst['box_diff'] <= MAX_BOX_DIFF, worst
    return worst


def check_parity(model, tmp_path, dynamic: bool = False,
                 boxes_from_masks: bool = False,
                 example: str = None) -> dict:
    """Export ``model`` (fixed 64 x 64, or ``dynamic``), run the graph in
    onnxruntime on :func:`scenes` (and, dynamic, a 64 x 96 canvas) and
    compare each with the eager predictions.

    ``example`` names the image of :func:`scenes` to trace on (default: a
    mid-grey image): a graph traced where the model finds nothing must still
    return instances elsewhere.

    Returns:
        dict: Per image, the eager instance count and the worst gaps.
    """
    from mmdet_pep.deploy import DeployModel, export_onnx
    from mmdet_pep.deploy.export import head_type
    from mmdet_pep.deploy.heads import DEPLOY_HEADS
    from mmdet_pep.deploy.inferencer import OrtDetector

    deploy = DeployModel(model, DEPLOY_HEADS[head_type(model)])
    out = str(tmp_path / 'model.onnx')
    images = scenes()
    traced = None if example is None else torch.from_numpy(
        images[example]).permute(2, 0, 1)[None].float()
    export_onnx(
        deploy,
        out,
        shape=(SCENE_SIZE, SCENE_SIZE),
        dynamic=dynamic,
        example=traced)
    session = OrtDetector(out, num_threads=1)
    if dynamic:
        images['non_square'] = non_square(images['scene'])
    report = {}
    for name, image in images.items():
        ref = eager(model, image)
        report[name] = compare(ref, session(image), boxes_from_masks)
    return report


def run_config(config: str, tmp_path, image: np.ndarray) -> tuple:
    """``config`` with its initial weights, exported at ``image``'s size
    and run on it in onnxruntime.

    Returns:
        tuple: The :class:`DeployModel` and the graph's outputs (dict).
    """
    from mmdet_pep.deploy import build_deploy_model, export_onnx
    from mmdet_pep.deploy.inferencer import OrtDetector

    deploy = build_deploy_model(config)
    out = export_onnx(deploy, str(tmp_path / 'config.onnx'),
                      shape=image.shape[:2])
    return deploy, OrtDetector(out, num_threads=1)(image)
