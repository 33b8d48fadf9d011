"""Deterministic synthetic "crowded objects" instance-segmentation data set.

PEP targets *indistinguishable objects*: adjacent and overlapping instances of
the same class whose appearance gives little cue about where one instance ends
and the next begins. This module renders such scenes procedurally so that the
model can be trained and evaluated end to end on a CPU in minutes, without
downloading COCO.

Every image contains:

- a smooth textured background (low-frequency noise plus a gradient or
  stripes);
- one to three *clusters* of 2-5 touching or overlapping objects that share a
  class and (up to a small jitter) a colour;
- a few *isolated* objects that touch nothing.

Objects are painted in order, so later objects occlude earlier ones, and every
annotation is the *visible* mask of its object: no pixel belongs to two masks.

The generator only needs numpy, OpenCV and pycocotools, so it runs without
torch or mmdet. Each image draws from its own ``numpy.random.Generator``
seeded by ``(seed, image_index)``, which makes the output byte-identical for
a given seed and makes the first ``k`` images independent of ``num_images``.
"""
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, NamedTuple, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

# Every shape the generator draws; a data set uses the first
# ``num_classes`` (3 by default: the demo set's classes).
SHAPES = ('disc', 'square', 'triangle', 'pentagon')
SHAPE_PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48)]
CLASSES = SHAPES[:3]
PALETTE = SHAPE_PALETTE[:3]

# Object extents in pixels for 128 px images; they scale with ``image_size``
# so that smaller test images keep the same scene layout.
_REFERENCE_SIZE = 128
_SIZE_RANGES = ((12., 22.), (22., 38.), (38., 60.))
_SIZE_PROBS = (0.35, 0.45, 0.2)
# Five large objects would cover most of the image and leave isolated objects
# no room, so large clusters are kept shorter.
_MAX_LARGE_CLUSTER = 3
# Objects must stand out from the background; only same-class neighbours are
# meant to be hard to tell apart.
_MIN_COLOUR_DISTANCE = 100.
_CLUSTER_COLOUR_JITTER = 6
_PIXEL_NOISE_STD = 3.
_PLACEMENT_TRIES = 20
# 8-connected neighbourhood: two masks "touch" when one, dilated by this
# kernel, intersects the other.
_TOUCH_KERNEL = np.ones((3, 3), np.uint8)
# Isolated objects keep a visible background gap of at least one pixel.
_GAP_KERNEL = np.ones((5, 5), np.uint8)
# Sub-pixel bits for ``cv2.fillPoly`` so that fractional centres and rotations
# change the rasterised masks.
_SHIFT = 4
# Data sets on which a comparison is repeated (``compare.py --variants``),
# as arguments of :func:`generate_dataset`: ``demo`` is the demo set,
# ``dense`` has larger images, a fourth class and smaller objects (0.7x)
# in larger clusters (3-7), so more of them per image. ``crowded`` is the
# set where PEP's grid fails (issue #39): clusters of 16-32 tiny objects
# (0.16x, ~4-19 px in 256 px images), so that about a fifth of the
# instances lose every cell of their centre region to a neighbour under
# the recommended config's assignment (24 % of val, 23 % of test by
# tools/analysis_tools/count_displaced.py; demo and dense: < 1 %).
VARIANTS = dict(
    demo=dict(),
    dense=dict(
        image_size=144,
        num_classes=4,
        size_scale=0.7,
        cluster_size=(3, 7),
        max_objects=16),
    crowded=dict(
        image_size=256,
        size_scale=0.16,
        cluster_size=(16, 32),
        max_objects=80))


def metainfo(num_classes: int = len(CLASSES)) -> dict:
    """Dataset meta information for MMDetection configs.

    Args:
        num_classes (int): Number of classes of the data set (the first of
            :data:`SHAPES`). Defaults to 3, the demo set's.

    Returns:
        dict: ``dict(classes=..., palette=[...])`` with one RGB tuple per
        class, suitable for ``CocoDataset(metainfo=...)``.
    """
    _check_num_classes(num_classes)
    return dict(
        classes=SHAPES[:num_classes],
        palette=list(SHAPE_PALETTE[:num_classes]))


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f'num_classes must be in [1, {len(SHAPES)}] (the '
                         f'shapes {SHAPES}), got {num_classes}')


def _derive_seed(seed: int, stream: int) -> int:
    """Derive an independent 32-bit seed from ``seed`` for another stream."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _background(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """Render a smooth textured background.

    Args:
        rng (np.random.Generator): Random generator of the image.
        image_size (int): Side length S of the square image.

    Returns:
        np.ndarray: Float32 RGB background of shape (S, S, 3), roughly in
        [0, 255] (clipping happens after compositing).
    """
    base = rng.uniform(50., 205., 3)
    cells = int(rng.integers(3, 7))
    coarse = rng.normal(0., 1., (cells, cells, 3)).astype(np.float32)
    # Bicubic upsampling of a coarse grid gives blob-like low-frequency
    # texture, unlike per-pixel noise that a CNN would simply average out.
    texture = cv2.resize(
        coarse,
        (image_size, image_size), interpolation=cv2.INTER_CUBIC) * rng.uniform(
            8., 20.)
    coords = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size
    theta = rng.uniform(0., 2 * np.pi)
    proj = coords[None, :] * np.cos(theta) + coords[:, None] * np.sin(theta)
    if rng.random() < 0.5:
        pattern = (proj - proj.mean()) * rng.uniform(20., 50.)
    else:
        pattern = np.sin(2 * np.pi * rng.uniform(3., 10.) * proj +
                         rng.uniform(0., 2 * np.pi)) * rng.uniform(6., 16.)
    return (base + texture + pattern[..., None]).astype(np.float32)


def _sample_colour(rng: np.random.Generator,
                   reference: np.ndarray) -> np.ndarray:
    """Sample an RGB colour far enough from ``reference``.

    Args:
        rng (np.random.Generator): Random generator of the image.
        reference (np.ndarray): Mean background colour, shape (3, ).

    Returns:
        np.ndarray: Integer RGB colour of shape (3, ).
    """
    for _ in range(64):
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - reference) >= _MIN_COLOUR_DISTANCE:
            return colour
    # The RGB cube corner opposite to the reference is always far enough.
    return np.where(reference < 128, 255, 0)


def _sample_size(rng: np.random.Generator, size_bin: int,
                 scale: float) -> float:
    """Sample an object extent in pixels from a small/medium/large bin."""
    low, high = _SIZE_RANGES[size_bin]
    return float(rng.uniform(low, high)) * scale


def _sample_shape(rng: np.random.Generator, label: int, size: float) -> dict:
    """Sample the appearance-independent geometry of one object.

    Args:
        rng (np.random.Generator): Random generator of the image.
        label (int): 0-based index into :data:`CLASSES`.
        size (float): Object extent in pixels (disc diameter, square side).

    Returns:
        dict: ``label``, ``size``, ``aspect`` (x/y stretch) and ``angle``
        (radians); the centre is chosen later by the placement logic.
    """
    return dict(
        label=label,
        size=size,
        aspect=float(rng.uniform(0.8, 1.25)),
        angle=float(rng.uniform(0., 2 * np.pi)))


def _shape_polygon(shape: dict, center: np.ndarray) -> np.ndarray:
    """Vertices of a shape placed at ``center``.

    Args:
        shape (dict): Geometry from :func:`_sample_shape`.
        center (np.ndarray): Centre (x, y) in pixels, shape (2, ).

    Returns:
        np.ndarray: Polygon vertices (x, y) of shape (N, 2).
    """
    size = shape['size']
    if shape['label'] == 0:
        t = np.linspace(0., 2 * np.pi, 48, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], axis=1) * size / 2
    elif shape['label'] == 1:
        pts = np.array([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]]) * size / 2
    elif shape['label'] == 3:
        # A circumradius of 0.575 * size gives pentagons the area of a disc
        # of the same size (2.378 R^2 = pi size^2 / 4).
        t = np.pi / 2 + np.arange(5) * 2 * np.pi / 5
        pts = np.stack([np.cos(t), np.sin(t)], axis=1) * (0.575 * size)
    else:
        # A side of 1.35 * size gives triangles roughly the area of a disc of
        # the same size, so class frequencies per size bin stay balanced.
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)],
                       axis=1) * (1.35 * size / np.sqrt(3))
    stretch = np.sqrt(shape['aspect'])
    pts = pts * np.array([stretch, 1. / stretch])
    cos, sin = np.cos(shape['angle']), np.sin(shape['angle'])
    rotation = np.array([[cos, -sin], [sin, cos]])
    return pts @ rotation.T + center


def _rasterize(shape: dict, center: np.ndarray, image_size: int) -> np.ndarray:
    """Rasterise a shape into a full (unoccluded) binary mask.

    Args:
        shape (dict): Geometry from :func:`_sample_shape`.
        center (np.ndarray): Centre (x, y) in pixels, shape (2, ).
        image_size (int): Side length S of the square image.

    Returns:
        np.ndarray: Boolean mask of shape (S, S), clipped to the image.
    """
    pts = np.round(_shape_polygon(shape, center) * (1 << _SHIFT))
    mask = np.zeros((image_size, image_size), np.uint8)
    cv2.fillPoly(mask, [pts.astype(np.int32)], 1, cv2.LINE_8, _SHIFT)
    return mask.astype(bool)


def _dilate(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Binary dilation of a boolean (S, S) mask with ``kernel``."""
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _place_touching(rng: np.random.Generator, anchor: dict, shape: dict,
                    image_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Place ``shape`` so that it touches or overlaps ``anchor``.

    The shape starts at a random direction and a distance between slightly
    overlapping and slightly apart, then walks towards the anchor one pixel
    at a time until the masks touch. Starting points inside the anchor yield
    overlaps, the others yield objects that just touch.

    Args:
        rng (np.random.Generator): Random generator of the image.
        anchor (dict): Already placed object with ``center``, ``size`` and
            full ``mask``.
        shape (dict): Geometry from :func:`_sample_shape`.
        image_size (int): Side length S of the square image.

    Returns:
        tuple[np.ndarray, np.ndarray]: Centre (2, ) and full mask (S, S).
    """
    halo = _dilate(anchor['mask'], _TOUCH_KERNEL)
    theta = rng.uniform(0., 2 * np.pi)
    direction = np.array([np.cos(theta), np.sin(theta)])
    distance = (anchor['size'] + shape['size']) / 2 * rng.uniform(0.8, 1.1)
    while True:
        # Centres stay inside the image, so the anchor centre (distance 0)
        # lies inside the anchor mask and the loop always terminates.
        center = np.clip(anchor['center'] + distance * direction, 0,
                         image_size - 1)
        mask = _rasterize(shape, center, image_size)
        if (mask & halo).any():
            return center, mask
        distance = max(distance - 1., 0.)


class Layout(NamedTuple):
    """What a scene is made of (the defaults make the demo set).

    Attributes:
        num_classes (int): Classes drawn, the first of :data:`SHAPES`.
        size_scale (float): Factor on every object extent (on top of the
            scaling with the image size).
        cluster_size (tuple[int, int]): Least and most objects per cluster
            (at least 2; large objects form clusters of at most 3).
    """
    num_classes: int = len(CLASSES)
    size_scale: float = 1.
    cluster_size: Tuple[int, int] = (2, 5)


def _check_layout(layout: Layout) -> None:
    _check_num_classes(layout.num_classes)
    if not layout.size_scale > 0:
        raise ValueError(
            f'size_scale must be > 0, got {layout.size_scale}')
    low, high = layout.cluster_size
    if not 2 <= low <= high:
        raise ValueError('cluster_size must be (least, most) with '
                         f'2 <= least <= most, got {layout.cluster_size}')


def _sample_cluster(rng: np.random.Generator, image_size: int,
                    background_mean: np.ndarray, budget: int,
                    layout: Layout) -> List[dict]:
    """Sample a cluster of touching same-class, same-colour objects.

    Args:
        rng (np.random.Generator): Random generator of the image.
        image_size (int): Side length S of the square image.
        background_mean (np.ndarray): Mean background colour, shape (3, ).
        budget (int): Maximum number of objects, at least 2.
        layout (Layout): Classes, sizes and cluster sizes.

    Returns:
        list[dict]: Objects in painter's order, each with ``label``,
        ``colour`` (3, ), ``center`` (2, ), ``size`` and full ``mask``
        (S, S).
    """
    scale = image_size / _REFERENCE_SIZE * layout.size_scale
    label = int(rng.integers(layout.num_classes))
    size_bin = int(rng.choice(len(_SIZE_RANGES), p=_SIZE_PROBS))
    num = int(rng.integers(layout.cluster_size[0],
                           layout.cluster_size[1] + 1))
    if size_bin == len(_SIZE_RANGES) - 1:
        num = min(num, _MAX_LARGE_CLUSTER)
    num = min(num, budget)
    base_size = _sample_size(rng, size_bin, scale)
    base_colour = _sample_colour(rng, background_mean)
    members = []
    for _ in range(num):
        shape = _sample_shape(rng, label, base_size * rng.uniform(0.85, 1.15))
        if members:
            # Anchoring on a random earlier member grows chains and blobs.
            anchor = members[int(rng.integers(len(members)))]
            center, mask = _place_touching(rng, anchor, shape, image_size)
        else:
            center = rng.uniform(0.15, 0.85, 2) * image_size
            mask = _rasterize(shape, center, image_size)
        jitter = rng.integers(-_CLUSTER_COLOUR_JITTER,
                              _CLUSTER_COLOUR_JITTER + 1, 3)
        members.append(
            dict(
                shape,
                colour=np.clip(base_colour + jitter, 0, 255),
                center=center,
                mask=mask))
    return members


def _sample_isolated(rng: np.random.Generator, image_size: int,
                     background_mean: np.ndarray, forbidden: np.ndarray,
                     layout: Layout) -> List[dict]:
    """Sample one object that touches none of the ``forbidden`` pixels.

    Args:
        rng (np.random.Generator): Random generator of the image.
        image_size (int): Side length S of the square image.
        background_mean (np.ndarray): Mean background colour, shape (3, ).
        forbidden (np.ndarray): Boolean (S, S) mask of pixels the object must
            not cover (existing objects grown by a gap).
        layout (Layout): Classes and sizes.

    Returns:
        list[dict]: The object (same keys as :func:`_sample_cluster`), or an
        empty list when no free spot was found.
    """
    scale = image_size / _REFERENCE_SIZE * layout.size_scale
    label = int(rng.integers(layout.num_classes))
    size_bin = int(rng.choice(len(_SIZE_RANGES), p=_SIZE_PROBS))
    shape = _sample_shape(rng, label, _sample_size(rng, size_bin, scale))
    colour = _sample_colour(rng, background_mean)
    for _ in range(_PLACEMENT_TRIES):
        center = rng.uniform(0.1, 0.9, 2) * image_size
        mask = _rasterize(shape, center, image_size)
        if not (mask & forbidden).any():
            return [dict(shape, colour=colour, center=center, mask=mask)]
    return []


def _render_scene(
        rng: np.random.Generator,
        image_size: int,
        min_area: int,
        max_objects: int,
        layout: Layout = Layout()) -> Tuple[np.ndarray, List[tuple]]:
    """Render one image and its visible instance masks.

    Args:
        rng (np.random.Generator): Random generator of the image.
        image_size (int): Side length S of the square image.
        min_area (int): Instances with fewer visible pixels are dropped.
        max_objects (int): Maximum number of painted objects.
        layout (Layout): Classes, sizes and cluster sizes.

    Returns:
        tuple[np.ndarray, list[tuple]]: The uint8 RGB image of shape
        (S, S, 3) and ``(label, visible_mask)`` pairs in painter's order, the
        masks being boolean arrays of shape (S, S). The list may be empty.
    """
    background = _background(rng, image_size)
    background_mean = background.reshape(-1, 3).mean(axis=0)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        if max_objects - len(objects) < 2:
            break
        objects += _sample_cluster(rng, image_size, background_mean,
                                   max_objects - len(objects), layout)
    for _ in range(int(rng.integers(1, 5))):
        if len(objects) >= max_objects:
            break
        occupied = np.zeros((image_size, image_size), bool)
        for obj in objects:
            occupied |= obj['mask']
        objects += _sample_isolated(rng, image_size, background_mean,
                                    _dilate(occupied, _GAP_KERNEL), layout)

    # Painter's order: each pixel belongs to the last object covering it.
    owner = np.full((image_size, image_size), -1, np.int64)
    for index, obj in enumerate(objects):
        owner[obj['mask']] = index
    image = background.copy()
    instances = []
    for index, obj in enumerate(objects):
        visible = owner == index
        # Dropped fragments are not painted, so every object pixel in the
        # image is covered by exactly one annotation.
        if visible.sum() < min_area:
            continue
        image[visible] = obj['colour']
        instances.append((obj['label'], visible))
    image += rng.normal(0., _PIXEL_NOISE_STD, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), instances


def _encode_instance(mask: np.ndarray) -> dict:
    """COCO ``segmentation``, ``area`` and ``bbox`` of a visible mask.

    Args:
        mask (np.ndarray): Non-empty boolean mask of shape (H, W).

    Returns:
        dict: ``segmentation`` as RLE with str ``counts``, integer ``area``
        and float ``bbox`` [x, y, w, h] tightly enclosing the mask.
    """
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    x1, y1 = int(xs.min()), int(ys.min())
    return dict(
        segmentation=dict(
            size=[int(v) for v in rle['size']],
            counts=rle['counts'].decode('ascii')),
        area=int(mask.sum()),
        bbox=[
            float(x1),
            float(y1),
            float(int(xs.max()) - x1 + 1),
            float(int(ys.max()) - y1 + 1)
        ])


def generate_coco_split(out_dir: str,
                        split: str,
                        num_images: int,
                        image_size: int = 128,
                        seed: int = 0,
                        min_area: int = 20,
                        max_objects: int = 12,
                        num_classes: int = len(CLASSES),
                        size_scale: float = 1.,
                        cluster_size: Tuple[int, int] = (2, 5)) -> str:
    """Generate one split of the synthetic crowded-objects data set.

    Writes ``out_dir/<split>/NNNNNN.png`` (``NNNNNN`` is the 1-based image
    id) and ``out_dir/annotations/instances_<split>.json`` in COCO format with
    RLE masks. The same arguments always give byte-identical files.

    Args:
        out_dir (str): Root directory of the data set.
        split (str): Split name, e.g. ``'train'``.
        num_images (int): Number of images, at least 1.
        image_size (int): Side length of the square images, at least 32.
            Object sizes scale with it relative to 128 px. Defaults to 128.
        seed (int): Non-negative seed. Image ``i`` uses the stream
            ``(seed, i)``. Defaults to 0.
        min_area (int): Instances whose visible area is smaller are dropped
            (and not painted). Defaults to 20.
        max_objects (int): Maximum number of objects per image, at least 3
            (one cluster of two plus one isolated object). Defaults to 12.
        num_classes (int): Number of classes, the first of :data:`SHAPES`.
            Defaults to 3.
        size_scale (float): Factor on every object extent. Defaults to 1.
        cluster_size (tuple[int, int]): Least and most objects per cluster,
            least >= 2. Defaults to (2, 5).

    The defaults make the demo set; other values make variants of it for
    checking that a result does not hinge on one data set.

    Returns:
        str: Path of the written annotation file.
    """
    if num_images < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}')
    if image_size < 32:
        raise ValueError(f'image_size must be >= 32, got {image_size}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if min_area < 1:
        raise ValueError(f'min_area must be >= 1, got {min_area}')
    if max_objects < 3:
        raise ValueError(f'max_objects must be >= 3, got {max_objects}')
    layout = Layout(num_classes, float(size_scale),
                    tuple(int(n) for n in cluster_size))
    _check_layout(layout)

    img_dir = osp.join(out_dir, split)
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)

    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, index])
        instances = []
        # Rare scenes lose every instance (e.g. all clipped by the border);
        # redraw from the same stream so every image has an annotation.
        while not instances:
            image, instances = _render_scene(rng, image_size, min_area,
                                             max_objects, layout)
        img_id = index + 1
        file_name = f'{img_id:06d}.png'
        cv2.imwrite(
            osp.join(img_dir, file_name), cv2.cvtColor(image,
                                                       cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_PNG_COMPRESSION, 3])
        images.append(
            dict(
                id=img_id,
                file_name=file_name,
                height=image_size,
                width=image_size))
        for label, mask in instances:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=label + 1,
                    iscrowd=0,
                    **_encode_instance(mask)))

    coco = dict(
        info=dict(
            description='PEP synthetic crowded objects',
            split=split,
            seed=seed,
            image_size=image_size,
            # Only a variant records its layout: the demo set's files stay
            # as they were before layouts existed.
            **({} if layout == Layout() else dict(
                layout=layout._asdict()))),
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=name)
            for i, name in enumerate(SHAPES[:num_classes])
        ])
    ann_file = osp.join(ann_dir, f'instances_{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f, sort_keys=True, separators=(',', ':'))
    return ann_file


def generate_dataset(out_dir: str,
                     num_train: int = 800,
                     num_val: int = 100,
                     image_size: int = 128,
                     seed: int = 0,
                     num_test: int = 200,
                     **layout) -> Dict[str, str]:
    """Generate the ``train``, ``val`` and held-out ``test`` splits.

    ``train`` uses ``seed`` itself, ``val`` and ``test`` seeds derived from
    it (streams 1 and 2), so no two splits share images, and ``train`` and
    ``val`` do not depend on ``num_test``. ``val`` is for choosing recipes,
    ``test`` for reporting them: nothing is ever tuned on ``test``.

    Args:
        out_dir (str): Root directory of the data set.
        num_train (int): Number of training images. Defaults to 800.
        num_val (int): Number of validation images. Defaults to 100.
        image_size (int): Side length of the square images. Defaults to 128.
        seed (int): Non-negative seed. Defaults to 0.
        num_test (int): Number of held-out test images; 0 writes no test
            split. Defaults to 200.
        **layout: ``min_area``, ``max_objects``, ``num_classes``,
            ``size_scale`` and ``cluster_size`` of
            :func:`generate_coco_split`, for every split.

    Returns:
        dict[str, str]: Annotation file path of each split, keyed by
        ``'train'``, ``'val'`` and (unless ``num_test`` is 0) ``'test'``.
    """
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if num_test < 0:
        raise ValueError(f'num_test must be >= 0, got {num_test}')
    ann_files = dict(
        train=generate_coco_split(out_dir, 'train', num_train, image_size,
                                  seed, **layout),
        val=generate_coco_split(out_dir, 'val', num_val, image_size,
                                _derive_seed(seed, 1), **layout))
    if num_test:
        ann_files['test'] = generate_coco_split(out_dir, 'test', num_test,
                                                image_size,
                                                _derive_seed(seed, 2),
                                                **layout)
    return ann_files


def dataset_statistics(ann_file: str) -> dict:
    """Summarise a generated annotation file.

    An instance counts as *crowded* when its visible mask, dilated by one
    pixel (8-connectivity), intersects the visible mask of another instance
    of the same class in the same image.

    Args:
        ann_file (str): Path of a COCO annotation file with RLE masks.

    Returns:
        dict: ``num_images``, ``num_instances``,
        ``mean_instances_per_image``, ``crowded_fraction`` and
        ``instances_per_class`` (class name to count).
    """
    with open(ann_file) as f:
        coco = json.load(f)
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    per_image = defaultdict(list)
    for ann in coco['annotations']:
        per_image[ann['image_id']].append(ann)

    crowded = 0
    for anns in per_image.values():
        masks = mask_utils.decode([ann['segmentation'] for ann in anns])
        masks = masks.transpose(2, 0, 1).astype(bool)
        for i, ann in enumerate(anns):
            halo = _dilate(masks[i], _TOUCH_KERNEL)
            crowded += any(
                (halo & masks[j]).any() for j, other in enumerate(anns)
                if j != i and other['category_id'] == ann['category_id'])

    num_images = len(coco['images'])
    num_instances = len(coco['annotations'])
    per_class = {name: 0 for name in names.values()}
    for ann in coco['annotations']:
        per_class[names[ann['category_id']]] += 1
    return dict(
        num_images=num_images,
        num_instances=num_instances,
        mean_instances_per_image=num_instances / num_images,
        crowded_fraction=crowded / max(num_instances, 1),
        instances_per_class=per_class)
