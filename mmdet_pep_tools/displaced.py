"""Displaced ground truth: objects that lose their grid cells (issue #39).

PEP's perceiving stage (like SOLO) gives every GT instance the cells of its
centre region on each level whose scale range holds its size, and where
regions overlap the smaller instance wins. An instance is **displaced**
when it is in at least one level's range but every cell of its centre
region(s) is owned by another instance: perceiving has no cell left for it,
and only the excavator can find it. It is **unassigned** when it is in no
level's range (or its mask is empty at the model's input size).

The assignment is the head's own: centres and boxes from its
``_get_targets_single``, cell owners from its ``_assign_cells`` (with all
instances of the image, and with each alone for its region), on the masks
the head would see: decoded from the COCO json (polygons, RLE; ``iscrowd``
ignored), resized by the config's test-pipeline ``Resize`` and padded to
the data preprocessor's ``pad_size_divisor``.
"""
import argparse
import contextlib
import io
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils

from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks

CHUNK = 16  # instances per _get_targets_single: bounds its float masks


def load_coco(ann_file: str) -> dict:
    """A COCO json, checked by :func:`check_coco`; FileNotFoundError if
    ``ann_file`` does not exist."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file {ann_file!r} not found')
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{ann_file}: not a JSON file ({e})') from None
    check_coco(coco, ann_file)
    return coco


def check_coco(coco: dict, ann_file: str = 'the annotations') -> None:
    """ValueError, naming ``ann_file`` and the field, unless ``coco`` has
    ``images`` (with ``id``, ``height``, ``width``) and ``annotations``
    (with ``id`` and the ``image_id`` of one of the images)."""
    if not isinstance(coco, dict):
        raise ValueError(f'{ann_file}: not a COCO json (a JSON object with '
                         "'images' and 'annotations')")
    for key in ('images', 'annotations'):
        if not isinstance(coco.get(key), list):
            raise ValueError(f'{ann_file}: no {key!r} list: not a COCO '
                             'instance annotation file')
    for key, fields in (('images', ('id', 'height', 'width')),
                        ('annotations', ('id', 'image_id'))):
        for i, item in enumerate(coco[key]):
            missing = [k for k in fields if k not in item]
            if missing:
                raise ValueError(f'{ann_file}: {key}[{i}] has no {missing}')
    img_ids = {img['id'] for img in coco['images']}
    for ann in coco['annotations']:
        if ann['image_id'] not in img_ids:
            raise ValueError(
                f'{ann_file}: annotation {ann["id"]} has image_id '
                f'{ann["image_id"]!r}, which no entry of "images" has')


def resize_of(cfg: Config) -> dict:
    """The ``Resize`` of the config's test pipeline (``test_dataloader``,
    else ``test_pipeline``)."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline') or []
    for t in pipeline:
        if t.get('type') in ('Resize', 'mmdet.Resize') and t.get('scale'):
            return dict(scale=tuple(t['scale']),
                        keep_ratio=t.get('keep_ratio', False))
    raise ValueError('the config\'s test pipeline has no Resize with a '
                     'scale: cannot tell the input size')


def build_assigner(cfg: Config):
    """The config's ``model.mask_head`` built: a PEPHead, or a head with
    its ``_get_targets_single`` and ``_assign_cells``."""
    head_cfg = cfg.get('model', {}).get('mask_head')
    if not head_cfg:
        raise ValueError('the config has no model.mask_head')
    import mmdet_pep  # noqa: F401  registers PEPHead
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    head = MODELS.build(head_cfg)
    missing = [n for n in ('_get_targets_single', '_assign_cells',
                           'num_grids', 'mask_stride') if not hasattr(head, n)]
    if missing:
        raise ValueError(f'model.mask_head ({head_cfg.get("type")}) has no '
                         f'{missing}: not a PEPHead-like head')
    return head.eval()


def ann_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """The (height, width) uint8 mask of a COCO annotation: polygons,
    RLE or uncompressed RLE; the box where it has no segmentation."""
    seg = ann.get('segmentation')
    if not seg:
        mask = np.zeros((height, width), np.uint8)
        x, y, w, h = ann.get('bbox', (0, 0, 0, 0))
        mask[int(np.floor(y)):int(np.ceil(y + h)),
             int(np.floor(x)):int(np.ceil(x + w))] = 1
        return mask
    try:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg.get('counts'), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        mask = mask_utils.decode(rle)
    except Exception as e:  # pycocotools' errors name no annotation
        raise ValueError(f'annotation {ann["id"]}: bad segmentation '
                         f'({type(e).__name__}: {e})') from None
    if mask.shape != (height, width):
        raise ValueError(f'annotation {ann["id"]}: segmentation size '
                         f'{list(mask.shape)} is not its image\'s '
                         f'{[height, width]}')
    return mask


def image_flags(head, masks: np.ndarray, resize: dict,
                pad_divisor: int) -> List[dict]:
    """Flags of the instances of one image, from their (G, H, W) uint8
    ``masks`` at the image's size, ``resize`` (:func:`resize_of`) and the
    data preprocessor's ``pad_size_divisor``.

    Returns:
        list[dict]: Per instance: ``levels`` (in whose range it is),
        ``region_cells`` (cells of its centre regions on those levels),
        ``owned_cells`` (those it keeps), ``owners`` (indices of the
        instances owning the rest), ``centre_lost`` (no centre cell kept:
        not an original in training), ``displaced``, ``unassigned`` and
        ``centre`` (its centre of mass (x, y) in padded-input pixels).
    """
    num = len(masks)
    if not num:
        return []
    bitmaps = BitmapMasks(masks, *masks.shape[1:])
    if resize['keep_ratio']:
        bitmaps = bitmaps.rescale(resize['scale'])
    else:
        bitmaps = bitmaps.resize(resize['scale'][::-1])
    h, w = bitmaps.height, bitmaps.width
    pad = (math.ceil(h / pad_divisor) * pad_divisor,
           math.ceil(w / pad_divisor) * pad_divisor)
    meta = dict(batch_input_shape=pad, pad_shape=pad, img_shape=(h, w))
    mask_size = tuple(math.ceil(p / head.mask_stride) for p in pad)
    labels = torch.zeros(num, dtype=torch.long)  # owners ignore classes
    boxes, centres = [], []
    with torch.no_grad():
        for i in range(0, num, CHUNK):
            gt = InstanceData(
                labels=labels[i:i + CHUNK],
                masks=BitmapMasks(bitmaps.masks[i:i + CHUNK], h, w))
            out = head._get_targets_single(gt, meta, mask_size)
            boxes.append(out[4])
            centres.append(out[5])
        boxes, centres = torch.cat(boxes), torch.cat(centres)
        # As _get_targets_single: size = sqrt(box area), valid = non-empty.
        sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) *
                           (boxes[:, 3] - boxes[:, 1]))
        valid = torch.from_numpy(bitmaps.masks.reshape(num, -1).any(1))
        _, owner, centre_cells = head._assign_cells(labels, boxes, centres,
                                                    sizes, valid, pad)
        offsets = torch.tensor([0] + [g * g for g in head.num_grids])
        offsets = offsets.cumsum(0)[:-1]
        flags = []
        for i in range(num):
            one = slice(i, i + 1)
            _, alone, _ = head._assign_cells(labels[one], boxes[one],
                                             centres[one], sizes[one],
                                             valid[one], pad)
            region = (alone == 0).nonzero(as_tuple=True)[0]
            levels = (centre_cells[i] >= 0).nonzero(as_tuple=True)[0]
            owners = owner[region]
            others = sorted(set(owners[owners != i].tolist()))
            kept = int((owners == i).sum())
            centres_i = centre_cells[i, levels] + offsets[levels]
            in_range = len(levels) > 0
            flags.append(dict(
                levels=levels.tolist(), region_cells=len(region),
                owned_cells=kept, owners=others,
                centre_lost=bool(in_range
                                 and not (owner[centres_i] == i).any()),
                displaced=bool(in_range and kept == 0),
                unassigned=not in_range,
                centre=[round(float(c), 2) for c in centres[i]]))
    return flags


def displaced_instances(cfg: Union[str, Config],
                        ann_file: Union[str, dict],
                        crowd_dist: int = 2) -> dict:
    """Per-annotation flags and their summary for a COCO json.

    Args:
        cfg: A config (path or loaded) with a PEPHead-like ``mask_head``.
        ann_file: Path of a COCO json, or the loaded dict.
        crowd_dist (int): Crowded vs isolated as ``CrowdCocoMetric``'s
            :func:`crowded_instances` with this distance; None: no split.

    Returns:
        dict: ``instances`` (annotation id -> :func:`image_flags`' flags
        with ``owners`` as annotation ids, ``image_id`` and ``crowded``)
        and ``summary`` (:func:`summarize`).
    """
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    coco = load_coco(ann_file) if isinstance(ann_file, str) else ann_file
    if not isinstance(ann_file, str):
        check_coco(coco)
    head = build_assigner(cfg)
    resize = resize_of(cfg)
    pad_divisor = int((cfg.model.get('data_preprocessor') or {}).get(
        'pad_size_divisor', 1) or 1)
    by_image = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        if not ann.get('iscrowd', 0):
            by_image[ann['image_id']].append(ann)
    crowded = {} if crowd_dist is None else _crowd_flags(coco, crowd_dist)
    instances = {}
    for img in coco['images']:
        anns = by_image[img['id']]
        if not anns:
            continue
        h, w = int(img['height']), int(img['width'])
        masks = np.stack([ann_mask(ann, h, w) for ann in anns])
        for ann, flag in zip(anns, image_flags(head, masks, resize,
                                               pad_divisor)):
            flag['owners'] = [anns[j]['id'] for j in flag['owners']]
            flag['image_id'] = img['id']
            flag['crowded'] = crowded.get(ann['id'])
            instances[ann['id']] = flag
    return dict(instances=instances,
                summary=summarize(instances, len(coco['images'])))


def displaced_file(ann_file: str) -> str:
    """Where the protocol keeps the displaced flags of
    ``.../instances_<split>.json``: ``.../displaced_<split>.json``."""
    folder, name = osp.split(ann_file)
    stem = name[len('instances_'):] if name.startswith('instances_') else name
    return osp.join(folder, f'displaced_{stem}')


def write_displaced(config: str,
                    ann_file: str,
                    out: str,
                    variant: Optional[str] = None,
                    crowd_dist: Optional[int] = 2) -> dict:
    """:func:`displaced_instances` of ``ann_file`` under ``config`` (adapted
    to the synthetic ``variant`` by :func:`variant_config`), written to
    ``out`` as JSON: ``config``, ``variant``, ``ann_file``, ``resize``,
    ``summary``, ``displaced`` (annotation id -> bool, what
    ``DisplacedCocoMetric`` reads) and ``instances`` (every flag).

    Returns:
        dict: :func:`displaced_instances`' result.
    """
    cfg = (variant_config(config, variant)
           if variant else Config.fromfile(config))
    result = displaced_instances(cfg, ann_file, crowd_dist)
    instances = result['instances']
    content = dict(
        config=osp.relpath(config) if osp.isabs(config) else config,
        variant=variant,
        ann_file=ann_file,
        resize=resize_of(cfg),
        summary=result['summary'],
        displaced={str(k): v['displaced'] for k, v in instances.items()},
        instances={str(k): v for k, v in instances.items()})
    with open(out, 'w') as f:
        json.dump(content, f, indent=1)
    return result


def _crowd_flags(coco: dict, crowd_dist: int) -> Dict[int, bool]:
    """Annotation id -> crowded, as CrowdCocoMetric decides it."""
    from mmdet.datasets.api_wrappers import COCO
    from mmdet_pep.evaluation.metrics import crowded_instances
    api = COCO()
    api.dataset = coco
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    cat_ids = sorted({a['category_id'] for a in coco['annotations']
                      if 'category_id' in a})
    return crowded_instances(api, crowd_dist, cat_ids=cat_ids)


#: Cell sizes (px of the padded input) at which :func:`owner_proximity`
#: places displaced instances against their owners: 4 is the general
#: feature B's (mask learning), 8 PEP's excavation map's (its key pixels).
PROXIMITY_STRIDES = (4, 8)


def owner_proximity(instances: dict,
                    strides: tuple = PROXIMITY_STRIDES) -> dict:
    """How close the displaced instances are to their owners.

    For each stride ``s``, the fraction of the displaced instances whose
    centre of mass lies in the same ``s``-px cell as an owner's centre
    (``same_cell``: a key pixel there is the owner's own location) and
    within one cell of it, Chebyshev (``within_one_cell``: a 3 x 3 peak
    suppression or a radius-1 target square joins them); and the median
    distance in px from a displaced centre to its nearest owner's centre.

    Args:
        instances (dict): Annotation id -> flags, with ``owners`` as
            annotation ids (:func:`displaced_instances`).
        strides (tuple[int]): Cell sizes in px.

    Returns:
        dict: ``{'median_owner_distance_px': float | None, 'stride_<s>':
        {'same_cell': f, 'within_one_cell': f}}``; fractions are None
        without displaced instances.
    """
    displaced = [f for f in instances.values() if f['displaced']]
    out = {}
    dists = []
    for f in displaced:
        cx, cy = f['centre']
        dists.append(min(
            math.hypot(cx - instances[o]['centre'][0],
                       cy - instances[o]['centre'][1]) for o in f['owners']))
    dists.sort()
    out['median_owner_distance_px'] = (round(dists[len(dists) // 2], 2)
                                       if dists else None)
    for stride in strides:
        same = near = 0
        for f in displaced:
            cell = [int(c // stride) for c in f['centre']]
            cheb = min(
                max(abs(int(c // stride) - k)
                    for c, k in zip(instances[o]['centre'], cell))
                for o in f['owners'])
            same += cheb == 0
            near += cheb <= 1
        n = len(displaced)
        out[f'stride_{stride}'] = dict(
            same_cell=round(same / n, 4) if n else None,
            within_one_cell=round(near / n, 4) if n else None)
    return out


def summarize(instances: dict, num_images: int) -> dict:
    """Counts and fractions: overall, and of the crowded and the isolated
    instances where the crowd flags are known; the displaced instances'
    :func:`owner_proximity`."""
    def counts(flags: list) -> dict:
        n, out = len(flags), dict(instances=len(flags))
        for key in ('displaced', 'unassigned', 'centre_lost'):
            out[key] = sum(f[key] for f in flags)
        assigned = n - out['unassigned']
        out['displaced_fraction'] = (round(out['displaced'] / n, 4)
                                     if n else None)
        out['displaced_of_assigned'] = (round(
            out['displaced'] / assigned, 4) if assigned else None)
        return out

    flags = list(instances.values())
    summary = dict(images=num_images, **counts(flags))
    summary['owner_proximity'] = owner_proximity(instances)
    for name, value in (('crowded', True), ('isolated', False)):
        subset = [f for f in flags if f['crowded'] is value]
        if subset:
            summary[name] = counts(subset)
    return summary


def variant_config(config: str,
                   variant: str,
                   data_dir: str = 'data',
                   work_dir: str = 'work_dirs') -> Config:
    """``config`` adapted to a synthetic data variant by the protocol's
    own :func:`~mmdet_pep_tools.protocol.protocol_cfg` (seed 0): the
    variant's data under ``data_dir``, its image size, classes and
    metric."""
    from mmdet_pep.datasets.synthetic import VARIANTS
    from .protocol import protocol_cfg
    from .specs import ModelSpec
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; the variants are '
                         f'{sorted(VARIANTS)}')
    args = argparse.Namespace(data_dir=data_dir, cfg_options=None,
                              max_iters=None, work_dir=work_dir)
    return protocol_cfg(ModelSpec('displaced', config), args, variant, 0)
