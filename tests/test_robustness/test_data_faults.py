"""Bad input data, fed through the synthetic config's data pipeline and the
tiny PEP: empty images, degenerate and tiny masks, crowds of 300+
instances, masks on the border, unusual image formats, corrupt and missing
files, out-of-range category ids and a ``num_classes`` mismatch."""
import copy
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from pycocotools import mask as mask_utils
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import mmdet_pep.engine  # noqa: F401  (registers the hooks)
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS, MODELS
from mmdet_pep.datasets import CorruptImageError
from pep_testing import tiny_detector_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('disc', 'square', 'triangle')
SIZE = 64




def rle(mask):
    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    enc['counts'] = enc['counts'].decode()
    return enc


def box_mask(x1, y1, x2, y2, size=SIZE):
    m = np.zeros((size, size), np.uint8)
    m[y1:y2, x1:x2] = 1
    return m


def paint(masks, size=SIZE, seed=0):
    """BGR image: noise background, each mask filled with its own colour."""
    rng = np.random.RandomState(seed)
    img = rng.randint(60, 120, (size, size, 3)).astype(np.uint8)
    for m in masks:
        img[m > 0] = rng.randint(150, 256, 3)
    return img


def annotation(ann_id, img_id, mask, cat=1, **override):
    ys, xs = np.nonzero(mask)
    bbox = ([float(xs.min()), float(ys.min()),
             float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            if len(xs) else [0., 0., 0., 0.])
    ann = dict(id=ann_id, image_id=img_id, category_id=cat, iscrowd=0,
               area=float(mask.sum()), bbox=bbox, segmentation=rle(mask))
    ann.update(override)
    return ann


def write_split(root, split, images, categories=None):
    """``images``: list of (file_name, image array or None, [annotation
    kwargs]); a None image is not written (a missing file)."""
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    coco = dict(images=[], annotations=[], categories=categories or [
        dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)
    ])
    for img_id, (name, img, anns) in enumerate(images, 1):
        if img is not None:
            cv2.imwrite(osp.join(root, split, name), img)
        h, w = (img.shape[:2] if img is not None else (SIZE, SIZE))
        coco['images'].append(
            dict(id=img_id, file_name=name, height=h, width=w))
        for kwargs in anns:
            kwargs = dict(kwargs)
            coco['annotations'].append(
                annotation(len(coco['annotations']) + 1, img_id,
                           kwargs.pop('mask'), **kwargs))
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return ann_file


def crowd_masks(size=128, side=4, step=7):
    return [
        box_mask(x, y, x + side, y + side, size)
        for y in range(2, size - side, step)
        for x in range(2, size - side, step)
    ]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('faults'))
    normal = [box_mask(8, 8, 28, 28), box_mask(36, 30, 60, 56)]
    zero = np.zeros((SIZE, SIZE), np.uint8)
    one = box_mask(40, 12, 41, 13)
    tiny = box_mask(20, 44, 22, 46)
    border = [
        box_mask(0, 0, 12, 12), box_mask(52, 0, 64, 10),
        box_mask(0, 56, 64, 64), box_mask(56, 20, 64, 40)
    ]
    crowd = crowd_masks()
    write_split(root, 'train', [
        ('normal.png', paint(normal), [dict(mask=m) for m in normal]),
        ('empty.png', paint([]), []),
        # A zero-pixel mask whose (bogus) box and area pass mmdet's filter,
        # a one-pixel mask and a 2x2 one (grid cells are 5+ pixels).
        ('degenerate.png', paint([one, tiny]), [
            dict(mask=zero, bbox=[10., 10., 5., 5.], area=25.),
            dict(mask=one, cat=2),
            dict(mask=tiny, cat=3)
        ]),
        ('border.png', paint(border), [dict(mask=m) for m in border]),
    ])
    write_split(root, 'crowd', [('crowd.png', paint(crowd, 128),
                                 [dict(mask=m, cat=1 + i % 3)
                                  for i, m in enumerate(crowd)])])
    return root


def dataset_cfg(root, split='train', test=False, scale=SIZE, **kwargs):
    """The synthetic config's data set, pointed at ``root/split``."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/synthetic_instance.py'))
    loader = cfg.test_dataloader if test else cfg.train_dataloader
    ds = copy.deepcopy(loader.dataset)
    ds.update(
        data_root=root + '/',
        ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'{split}/'))
    for t in ds.pipeline:
        if t.type == 'Resize':
            t.scale = (scale, scale)
        if t.type == 'RandomFlip':
            t.prob = 0.
    ds.update(kwargs)
    return ds


def build(root, split='train', **kwargs):
    return DATASETS.build(dataset_cfg(root, split, **kwargs))


def index_of(ds, name):
    names = [osp.basename(ds.get_data_info(i)['img_path'])
             for i in range(len(ds))]
    return names.index(name) if name in names else None


def build_detector():
    torch.manual_seed(0)
    model = MODELS.build(tiny_detector_cfg())
    model.init_weights()
    return model


def loss_step(model, samples):
    model.train()
    data = model.data_preprocessor(pseudo_collate(samples), True)
    losses = model(**data, mode='loss')
    for key, value in losses.items():
        assert torch.isfinite(value), key
    model.zero_grad()
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name
    return losses, data


def predict(model, samples):
    model.eval()
    data = model.data_preprocessor(pseudo_collate(samples), False)
    with torch.no_grad():
        return [r.pred_instances for r in model(**data, mode='predict')]


# (a) images without annotations ------------------------------------------


def test_empty_image_skipped_by_filter_empty_gt(data_root):
    ds = build(data_root)  # the config: filter_empty_gt=True
    assert index_of(ds, 'empty.png') is None
    assert index_of(ds, 'normal.png') is not None


def test_empty_image_trains_as_background(data_root):
    ds = build(data_root, filter_cfg=dict(filter_empty_gt=False))
    sample = ds[index_of(ds, 'empty.png')]
    assert len(sample['data_samples'].gt_instances) == 0
    losses, _ = loss_step(build_detector(), [sample])
    assert losses['loss_perceive'] > 0  # every cell is background
    assert all(losses[k] == 0 for k in losses if k != 'loss_perceive')


def test_empty_image_at_test_time(data_root):
    ds = build(data_root, test=True)
    sample = ds[index_of(ds, 'empty.png')]
    model = build_detector()
    model.mask_head.test_cfg.score_thr = 1.0  # nothing can pass
    res = predict(model, [sample])[0]
    assert len(res) == 0 and res.masks.shape == (0, SIZE, SIZE)
    # The COCO metric takes an all-empty result without crashing.
    metric = CocoMetric(
        ann_file=osp.join(data_root, 'annotations/instances_train.json'),
        metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=CLASSES)
    out = sample['data_samples']
    out.pred_instances = res
    metric.process({}, [out.to_dict()])
    assert metric.evaluate(size=1) == {}


# (b) zero-area, one-pixel and sub-cell masks --------------------------------


def test_degenerate_and_tiny_masks(data_root):
    ds = build(data_root)
    sample = ds[index_of(ds, 'degenerate.png')]
    gt = sample['data_samples'].gt_instances
    assert gt.masks.areas.tolist() == [0, 1, 4]
    model = build_detector()
    losses, data = loss_step(model, [sample])
    targets = model.mask_head._get_targets_single(
        data['data_samples'][0].gt_instances,
        data['data_samples'][0].metainfo, (16, 16))
    pos_gt_inds = targets[1]
    assert not (pos_gt_inds == 0).any()  # the empty mask is ignored
    assert (pos_gt_inds == 1).any() and (pos_gt_inds == 2).any()
    assert predict(model, [sample])[0].masks.shape[1:] == (SIZE, SIZE)


# (c) 300+ instances in one image --------------------------------------------


class WorkCounter(TorchDispatchMode):
    """Counts the tensor operations run and the elements they produce.

    A measure of work that is the same on every machine, unlike a clock:
    a Python loop over instances shows in ``ops``, a tensor over pairs of
    instances in ``elements``.
    """

    def __init__(self):
        super().__init__()
        self.ops = 0
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        self.elements += sum(t.numel() for t in tree_leaves(out)
                             if isinstance(t, torch.Tensor))
        return out


def loss_work(model, sample, num_gts):
    """Work of one training step on ``sample`` cut to ``num_gts`` GTs."""
    sample = copy.deepcopy(sample)
    sample['data_samples'].gt_instances = \
        sample['data_samples'].gt_instances[:num_gts]
    torch.manual_seed(0)  # the excavator and purifier sample at random
    with WorkCounter() as work:
        losses, _ = loss_step(model, [sample])
    return work, losses


def test_crowd_of_300_instances(data_root):
    ds = build(data_root, 'crowd', scale=128)
    sample = ds[0]
    num = len(crowd_masks())
    assert len(sample['data_samples'].gt_instances) == num >= 300
    model = build_detector()
    loss_work(model, sample, 3)  # warm-up: lazy initialisation is not work
    # Training work must grow at most linearly with the number of GT
    # instances (the excavator and purifier sample a bounded number of
    # descriptors; targets are one set of tensor ops). The same image with
    # 3, num/2 and num GTs: the fixed cost (backbone, neck) cancels in the
    # differences, and linear work adds as much per GT in the second half
    # as in the first, while work over pairs of GTs (G^2) would add
    # (num/2 + num) / (3 + num/2) ~ 3 times as much.
    counts = [3, num // 2, num]
    works, losses = zip(*(loss_work(model, sample, g) for g in counts))
    assert losses[-1]['loss_excavate_cls'] > 0
    assert losses[-1]['loss_graph'] > 0
    w = [work.elements for work in works]
    assert w[0] < w[1] < w[2], ('elements', w)
    first = (w[1] - w[0]) / (counts[1] - counts[0])
    second = (w[2] - w[1]) / (counts[2] - counts[1])
    assert second < 1.5 * first, ('elements', w)
    # The number of tensor ops does not grow with the GTs at all: the
    # targets are built without a Python loop over instances (PEPHead.
    # _assign_cells), so only the sampled descriptors vary it slightly.
    ops = [work.ops for work in works]
    assert max(ops) - min(ops) < 0.01 * ops[0], ('ops', ops)

    # Let every cell pass the score threshold: the worst case for the
    # excavator and the purifier at inference. Their work is bounded by
    # the test_cfg caps, not by the crowd: at most max_originals originals
    # are excavated, each giving at most max_keys mined descriptors, and the
    # purifier groups at most nms_pre candidates plus those.
    cfg = model.mask_head.test_cfg
    cfg.update(score_thr=0.0, nms_pre=500, max_per_img=400)
    cfg.excavate.max_originals = 300
    seen = {}
    head = model.mask_head
    excavate, group = head.excavator.predict, head.purifier.group

    def spy_excavate(exc_feat, descriptors, *args, **kwargs):
        seen['originals'] = descriptors.size(0)
        out = excavate(exc_feat, descriptors, *args, **kwargs)
        seen['mined'] = out['descriptors'].size(0)
        return out

    def spy_group(descriptors, *args, **kwargs):
        seen['grouped'] = descriptors.size(0)
        return group(descriptors, *args, **kwargs)

    head.excavator.predict = spy_excavate
    head.purifier.group = spy_group
    res = predict(model, [sample])[0]
    assert res.masks.shape[1:] == (128, 128)
    assert 0 < len(res) <= cfg.max_per_img
    assert 0 < seen['originals'] <= cfg.excavate.max_originals
    assert seen['mined'] <= seen['originals'] * cfg.excavate.max_keys
    assert 0 < seen['grouped'] <= cfg.nms_pre + seen['mined']


# (d) masks touching the image border ------------------------------------


@pytest.mark.parametrize('flip', [0., 1.])
def test_masks_touching_the_border(data_root, flip):
    cfg = dataset_cfg(data_root)
    for t in cfg.pipeline:
        if t.type == 'RandomFlip':
            t.prob = flip
    ds = DATASETS.build(cfg)
    sample = ds[index_of(ds, 'border.png')]
    model = build_detector()
    losses, data = loss_step(model, [sample])
    assert losses['loss_mask'] > 0
    gt = data['data_samples'][0].gt_instances
    targets = model.mask_head._get_targets_single(
        gt, data['data_samples'][0].metainfo, (16, 16))
    centres, boxes = targets[2], targets[4]
    assert (centres >= 0).any(1).all(), 'every border instance is learned'
    assert boxes.min() == 0 and boxes[:, 2:].max() == SIZE
    assert predict(model, [sample])[0].masks.shape[1:] == (SIZE, SIZE)


# (e) grayscale, RGBA and 16-bit images --------------------------------------


@pytest.fixture(scope='module')
def format_root(tmp_path_factory):
    """One picture stored as 8-bit BGR, grayscale, BGRA, 16-bit BGR and
    16-bit grayscale, with the same annotation."""
    root = str(tmp_path_factory.mktemp('formats'))
    masks = [box_mask(8, 8, 28, 28), box_mask(36, 30, 60, 56)]
    bgr = paint(masks)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    variants = dict(
        bgr=bgr,
        gray=gray,
        bgra=np.dstack([bgr, np.full(gray.shape, 200, np.uint8)]),
        bgr16=bgr.astype(np.uint16) * 257,
        gray16=gray.astype(np.uint16) * 257)
    write_split(root, 'train', [(f'{k}.png', v, [dict(mask=m)
                                                 for m in masks])
                                for k, v in variants.items()])
    return root


@pytest.mark.parametrize('test', [False, True])
def test_image_formats_through_pipeline_and_model(format_root, test):
    ds = build(format_root, test=test)
    samples = {
        osp.basename(ds.get_data_info(i)['img_path'])[:-4]: ds[i]
        for i in range(len(ds))
    }
    ref = samples['bgr']['inputs']
    ref_gray = torch.from_numpy(
        cv2.cvtColor(ref.permute(1, 2, 0).numpy(), cv2.COLOR_BGR2GRAY))
    for name, sample in samples.items():
        img = sample['inputs']
        assert img.dtype == torch.uint8 and img.shape == (3, SIZE, SIZE)
        if name.startswith('gray'):
            for c in range(3):
                assert (img[c].int() - ref_gray.int()).abs().max() <= 1
        else:
            assert torch.equal(img, ref), name
    model = build_detector()
    if test:
        # Confident enough to predict something, so that the comparison
        # below is between real masks, not between empty results.
        with torch.no_grad():
            model.mask_head.conv_cls.bias.copy_(
                torch.tensor([3., 0., 0., 0.]))
        model.mask_head.test_cfg.score_thr = 0.3
        preds = dict(zip(samples, predict(model, list(samples.values()))))
        ref = preds['bgr']
        assert (ref.masks.sum((1, 2)) > 0).any()
        for name, res in preds.items():
            assert res.masks.shape[1:] == (SIZE, SIZE)
            assert len(res) > 0, name
            if not name.startswith('gray'):
                # The same input tensor (checked above), the same result.
                assert torch.equal(res.labels, ref.labels), name
                assert torch.allclose(res.scores, ref.scores,
                                      atol=1e-5), name
                assert (res.masks != ref.masks).float().mean() < 0.01, name
    else:
        loss_step(model, list(samples.values()))


def test_12_bit_png_needs_bit_depth(tmp_path):
    """12-bit data in a 16-bit PNG: ``bit_depth=12`` in the config's loader
    gives the real picture; the default would make it almost black."""
    masks = [box_mask(8, 8, 28, 28)]
    bgr = paint(masks)
    img12 = ((bgr.astype(np.uint32) * 4095 + 127) // 255).astype(np.uint16)
    root = str(tmp_path)
    write_split(root, 'train', [('a.png', img12, [dict(mask=masks[0])])])
    cfg = dataset_cfg(root)
    assert cfg.pipeline[0].type == 'CheckedLoadImageFromFile'
    assert DATASETS.build(cfg)[0]['inputs'].max() <= 16
    cfg.pipeline[0].bit_depth = 12
    img = DATASETS.build(cfg)[0]['inputs']
    assert torch.equal(img, torch.from_numpy(bgr).permute(2, 0, 1))


# (f) corrupt and missing image files --------------------------------------


@pytest.fixture
def broken_root(tmp_path):
    root = str(tmp_path)
    masks = [box_mask(8, 8, 28, 28)]
    write_split(root, 'train', [
        ('good.png', paint(masks), [dict(mask=masks[0])]),
        ('missing.png', None, [dict(mask=masks[0])]),
        ('corrupt.png', paint(masks), [dict(mask=masks[0])]),
        ('empty.png', paint(masks), [dict(mask=masks[0])]),
    ])
    path = osp.join(root, 'train', 'corrupt.png')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])  # truncated copy
    open(osp.join(root, 'train', 'empty.png'), 'wb').close()
    return root


@pytest.mark.parametrize('name,error', [('missing.png', FileNotFoundError),
                                        ('corrupt.png', CorruptImageError),
                                        ('empty.png', CorruptImageError)])
def test_bad_image_file_error_names_the_file(broken_root, name, error):
    ds = build(broken_root)
    with pytest.raises(error) as info:
        ds[index_of(ds, name)]
    assert osp.join(broken_root, 'train', name) in str(info.value)


def test_bad_image_file_named_from_a_loader_worker(broken_root):
    ds = build(broken_root)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, [index_of(ds, 'empty.png')]),
        num_workers=1,
        collate_fn=pseudo_collate)
    with pytest.raises(CorruptImageError, match='empty.png'):
        next(iter(loader))


def test_bad_image_file_in_the_test_pipeline(broken_root):
    """The test pipeline keeps mmcv's loader (for DetInferencer); with
    CheckedCocoDataset an error is still tagged with the image."""
    path = osp.join(broken_root, 'train', 'empty.png')
    ds = build(broken_root, test=True, type='CheckedCocoDataset')
    with pytest.raises(Exception) as info:
        ds[index_of(ds, 'empty.png')]
    assert path not in str(info.value)  # mmcv's own message
    assert any(path in note for note in info.value.__notes__)


def test_bad_image_skipped_with_ignore_empty(broken_root):
    cfg = dataset_cfg(broken_root)
    cfg.pipeline[0].ignore_empty = True
    ds = DATASETS.build(cfg)
    for name in ('missing.png', 'corrupt.png', 'empty.png'):
        sample = ds[index_of(ds, name)]  # another image is drawn
        assert sample['data_samples'].img_path.endswith('good.png')


# (g) annotation category ids out of range ----------------------------------


@pytest.fixture
def bad_category_root(tmp_path):
    root = str(tmp_path)
    masks = [box_mask(8, 8, 28, 28), box_mask(36, 30, 60, 56)]
    write_split(root, 'train', [
        ('a.png', paint(masks), [dict(mask=masks[0], cat=2)]),
        ('b.png', paint(masks), [dict(mask=masks[0]),
                                 dict(mask=masks[1], cat=7)]),
    ])
    return root


def test_unknown_category_id_fails_at_load(bad_category_root):
    with pytest.raises(ValueError) as info:
        build(bad_category_root, type='CheckedCocoDataset')
    msg = str(info.value)
    assert 'annotation id 3' in msg and 'image id 2' in msg
    assert "'b.png'" in msg and 'category_id 7' in msg


def test_stock_coco_dataset_drops_unknown_category_silently(
        bad_category_root):
    ds = build(bad_category_root, type='CocoDataset')
    b = ds.get_data_info(index_of(ds, 'b.png'))
    assert len(b['instances']) == 1


# (h) num_classes of the model vs the data set ------------------------------


@pytest.mark.parametrize('where', ['train', 'val'])
def test_num_classes_mismatch_fails_before_the_first_iteration(
        data_root, tmp_path, where):
    from mmengine.hooks import Hook

    class Count(Hook):
        ran = 0

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            Count.ran += 1

    wrong = dict(classes=('disc', 'square'))
    train_ds = dataset_cfg(data_root, metainfo=wrong if where == 'train'
                           else dict(classes=CLASSES))
    val_ds = dataset_cfg(data_root, test=True,
                         metainfo=wrong if where == 'val' else
                         dict(classes=CLASSES))
    loader = dict(batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='pseudo_collate'))
    runner = Runner(
        model=tiny_detector_cfg(),
        work_dir=str(tmp_path),
        train_dataloader=dict(loader, dataset=train_ds),
        val_dataloader=dict(loader, dataset=val_ds),
        val_evaluator=dict(type='CocoMetric', metric=['segm'],
                           ann_file=osp.join(
                               data_root, 'annotations/instances_train.json')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2,
                       val_interval=2),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.001)),
        custom_hooks=[dict(type='StrictNumClassCheckHook'), Count()],
        default_scope='mmdet')
    with pytest.raises(ValueError) as info:
        runner.train()
    msg = str(info.value)
    assert 'model.mask_head.num_classes = 3' in msg
    assert f'{where}_dataloader.dataset' in msg and 'has 2 classes' in msg
    assert Count.ran == 0
