"""``DetInferencer`` runs PEP from a config path and a checkpoint file."""
import json
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
from pycocotools import mask as mask_utils

from mmdet.apis import DetInferencer
from mmdet.registry import MODELS
from mmdet_pep.datasets.synthetic import generate_coco_split, metainfo
from pep_testing import check_masks_in_boxes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = osp.join(ROOT, 'configs', 'pep', 'pep_r18_fpn_tiny_synthetic.py')


def save_untrained_checkpoint(path):
    """Save a freshly initialised tiny PEP as a Runner would.

    The inferencer takes the class names from ``meta.dataset_meta``; without
    them it falls back to COCO's 80 names and warns.
    """
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TINY_CFG).model)
    model.init_weights()
    save_checkpoint(
        dict(
            meta=dict(dataset_meta=metainfo()),
            state_dict=weights_to_cpu(model.state_dict())), path)


def test_det_inferencer_predicts_and_draws(tmp_path):
    generate_coco_split(str(tmp_path / 'data'), 'val', 1, image_size=64)
    img = str(tmp_path / 'data' / 'val' / '000001.png')
    ckpt = str(tmp_path / 'pep_tiny.pth')
    save_untrained_checkpoint(ckpt)

    inferencer = DetInferencer(
        model=TINY_CFG, weights=ckpt, device='cpu', show_progress=False)
    assert inferencer.model.dataset_meta['classes'] == metainfo()['classes']

    out_dir = tmp_path / 'out'
    results = inferencer(img, out_dir=str(out_dir), no_save_pred=False)

    vis = out_dir / 'vis' / '000001.png'
    assert vis.is_file() and vis.stat().st_size > 0
    (pred, ) = results['predictions']
    assert set(pred) == {'labels', 'scores', 'bboxes', 'masks'}
    # The tiny config keeps every candidate (score_thr=0), so even an
    # untrained model must return instances for the checks below to bite.
    num = len(pred['labels'])
    assert 0 < num <= 20
    assert len(pred['scores']) == len(pred['bboxes']) == len(
        pred['masks']) == num
    assert all(0 <= label < 3 for label in pred['labels'])
    assert all(len(box) == 4 for box in pred['bboxes'])
    # Masks come RLE-encoded at the original image size.
    assert all(mask['size'] == [64, 64] for mask in pred['masks'])
    # Content, not only types: the image has objects and the tiny config
    # keeps every candidate, so at least one mask has pixels, and every
    # box is the tight pixel-edge box of its mask (PEP derives its boxes
    # from the masks); an empty mask has the zero box.
    masks = mask_utils.decode(
        [dict(m, counts=m['counts'].encode()) for m in pred['masks']])
    masks = masks.transpose(2, 0, 1).astype(bool)
    assert check_masks_in_boxes(masks, pred['bboxes'], tight=True) >= 1
    with open(out_dir / 'preds' / '000001.json') as f:
        assert json.load(f)['labels'] == pred['labels']
