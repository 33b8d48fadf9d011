"""Convert an official SipMask or SipMask-VIS checkpoint to this package.

The official code (JialeCao001/SipMask, read at bc63fa9) is two mmdet 1.x
forks: ``SipMask-mmdetection`` (images; SipMask and SipMask++) and
``SipMask-VIS`` (video), whose checkpoints hold ``backbone.*``, ``neck.*``
and ``bbox_head.*`` (the VIS head also holds the track branch). This
script renames every key to the modules this package builds:
``SipMask`` (``backbone``/``neck``/``bbox_head``) or ``SipMaskVIS``
(``detector.*`` and ``track_head.*``), and writes an mmengine checkpoint
(``meta``, ``state_dict``).

Every key must match one rule of :data:`RULES` (the official module, with
the file and lines that define it, and its name here) or the conversion
fails naming the keys it cannot map. No key is dropped silently: the only
dropped keys are the unused GroupNorm of the alignment of an image head
without norm (:data:`UNUSED`), listed in the output.

With ``--config``, the result is checked against the model that config
builds: every key must exist there with the same shape and every key of
the model must be in the result, or the conversion fails naming them.
Allowed, and listed: an image checkpoint converted for a SipMask-VIS config
has no ``track_head.*`` (the official VIS recipe starts the track branch
from scratch too); ``--skip-unmatched`` leaves out the keys the model does
not have or has with another shape, as the official ``load_from`` did
(``strict=False``: mmcv 0.2.12's ``load_state_dict`` skips both,
open-mmlab/mmcv v0.2.12 mmcv/runner/checkpoint.py:62-74, called by
SipMask-VIS/mmdet/apis/train.py:185, 220). For the YouTube-VIS recipe these
are the COCO model's third classification and fourth box conv (its towers
have 3 and 4 convs, the VIS model's 2 and 3) and its 80-class classifier;
the model's classifier then keeps its initialisation.

With ``--from-mmdet-pep-image`` the source is instead a checkpoint of an
image detector of this package or of mmdet (as mmengine's Runner saves it:
``backbone.*``, ``neck.*``, ``bbox_head.*`` or ``rpn_head.*``/``roi_head.*``)
and ``--config`` a video model that holds that detector as ``detector``
(SipMask-VIS, mmdet's MaskTrack R-CNN): every key gets ``detector.`` in
front, nothing else changes, and the check above holds (only the track
head may be absent). This makes the synthetic video configs' ``load_from``
from the synthetic image models (``mmdet_pep_tools.image_init``).

Examples (``sipmask_r50_caffe_1x.pth``: the official SipMask R-50 1x of
the README's image table)::

    # for configs/sipmask/sipmask_r50-caffe_fpn_gn-head_1x_coco.py
    python tools/model_converters/sipmask_official_to_mmdet.py \\
        sipmask_r50_caffe_1x.pth \\
        checkpoints/sipmask_r50_caffe_fpn_gn_1x_coco_mmdet-pep.pth \\
        --config configs/sipmask/sipmask_r50-caffe_fpn_gn-head_1x_coco.py
    # the SipMask-VIS YouTube-VIS configs' load_from
    python tools/model_converters/sipmask_official_to_mmdet.py \\
        sipmask_r50_caffe_1x.pth \\
        checkpoints/sipmask_r50_caffe_fpn_gn_1x_coco_mmdet-pep_vis.pth \\
        --config \\
    configs/sipmask/sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019.py \\
        --skip-unmatched
    # the synthetic SipMask-VIS config's load_from, from the image model
    python tools/model_converters/sipmask_official_to_mmdet.py \\
        work_dirs/comparison/demo/SipMask/seed0/iter_1200.pth \\
        checkpoints/sipmask_r18_fpn_1200it_synthetic_seed0_vis.pth \\
        --from-mmdet-pep-image \\
        --config configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py
"""
import argparse
import os
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

IMAGE, VIS = 'image', 'vis'
#: The source kind of ``--from-mmdet-pep-image``.
MMDET_PEP_IMAGE = 'mmdet-pep image'

# Official files, as cited below.
SM = 'SipMask-mmdetection/mmdet'
VIS_SM = 'SipMask-VIS/mmdet'

# A BatchNorm's parameters and buffers.
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'

#: (official key, key here, where the official module is defined), matched
#: in full against the checkpoint's keys (without ``module.``). The
#: ``bbox_head`` rules hold for both heads: image
#: SM/models/anchor_heads/sipmask_head.py:159-219, VIS
#: VIS_SM/models/anchor_heads/sipmask_head.py:174-232.
RULES: List[Tuple[str, str, str]] = [
    # The DCN of SipMask-VIS' older ResNet: a separate offset conv
    # (VIS_SM/models/backbones/resnet.py:171-178); mmcv's DeformConv2dPack
    # holds it as conv2.conv_offset, as the image fork's DeformConvPack
    # (SM/ops/dcn/deform_conv.py:258-279).
    (r'backbone\.(layer\d+\.\d+)\.conv2_offset\.(weight|bias)',
     r'backbone.\1.conv2.conv_offset.\2',
     f'{VIS_SM}/models/backbones/resnet.py:171-178'),
    # mmdet 1.x's ResNet has mmdet 3's names: the conv1/bn1 stem, layerN.i
    # with convK/bnK, downsample.0/1 and a DCN's conv2.conv_offset.
    (r'backbone\.((conv1\.weight|bn1\.' + _BN + r')|layer\d+\.\d+\.('
     r'conv[123]\.weight|conv2\.conv_offset\.(weight|bias)|bn[123]\.' + _BN +
     r'|downsample\.0\.weight|downsample\.1\.' + _BN + r'))',
     r'backbone.\1',
     f'{SM}/models/backbones/resnet.py:13-180, 242-308, 448-460'),
    # FPN: ConvModules in lateral_convs/fpn_convs, the extra P6/P7 convs
    # appended to fpn_convs, as mmdet 3's.
    (r'neck\.((lateral|fpn)_convs\.\d+\.conv\.(weight|bias))', r'neck.\1',
     f'{SM}/models/necks/fpn.py:86-129'),
    # Towers: ConvModules whose GroupNorm is named 'gn'
    # (SM/ops/norm.py:5-7), as mmcv's.
    (r'bbox_head\.((cls|reg)_convs\.\d+\.(conv|gn)\.(weight|bias))',
     r'bbox_head.\1', f'{SM}/models/anchor_heads/sipmask_head.py:162-185'),
    (r'bbox_head\.fcos_cls\.(weight|bias)', r'bbox_head.conv_cls.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:186-187'),
    (r'bbox_head\.fcos_reg\.(weight|bias)', r'bbox_head.conv_reg.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:188'),
    (r'bbox_head\.fcos_centerness\.(weight|bias)',
     r'bbox_head.conv_centerness.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:189'),
    (r'bbox_head\.scales\.(\d+)\.scale', r'bbox_head.scales.\1.scale',
     f'{SM}/models/anchor_heads/sipmask_head.py:190'),
    # FeatureAlign: 1x1 offset conv, deformable conv (no bias), GroupNorm.
    (r'bbox_head\.feat_align\.(conv_offset\.weight|conv_adaption\.weight|'
     r'norm\.(weight|bias))', r'bbox_head.feat_align.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:28-40, 194'),
    (r'bbox_head\.sip_cof\.(weight|bias)', r'bbox_head.conv_coeff.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:195'),
    (r'bbox_head\.sip_mask_lat0\.(weight|bias)', r'bbox_head.basis_fuse.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:198'),
    (r'bbox_head\.sip_mask_lat\.(weight|bias)', r'bbox_head.basis_out.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:197'),
    # SipMask++ (rescoring_flag): the mask-IoU branch.
    (r'bbox_head\.convs_scoring\.(\d+)\.conv\.(weight|bias)',
     r'bbox_head.mask_iou_convs.\1.conv.\2',
     f'{SM}/models/anchor_heads/sipmask_head.py:200-215'),
    (r'bbox_head\.mask_scoring\.(weight|bias)', r'bbox_head.conv_mask_iou.\1',
     f'{SM}/models/anchor_heads/sipmask_head.py:216'),
    # SipMask-VIS: the track branch inside the head.
    (r'bbox_head\.track_convs\.(\d+)\.(conv|gn)\.(weight|bias)',
     r'track_head.track_convs.\1.\2.\3',
     f'{VIS_SM}/models/anchor_heads/sipmask_head.py:219-231'),
    (r'bbox_head\.sipmask_track\.(weight|bias)', r'track_head.conv_embed.\1',
     f'{VIS_SM}/models/anchor_heads/sipmask_head.py:232'),
]

#: Official keys of parameters the official model does not use, with the
#: condition and the reason: the image fork's FeatureAlign always builds a
#: GroupNorm but applies it only when the head has a norm (flag_norm,
#: SM/models/anchor_heads/sipmask_head.py:40-54); here a head without
#: norm has no such module. (The VIS fork applies it always:
#: VIS_SM/models/anchor_heads/sipmask_head.py:48, 56.)
UNUSED = (r'bbox_head\.feat_align\.norm\.(weight|bias)',
          'unused by the official image head without norm '
          f'({SM}/models/anchor_heads/sipmask_head.py:40-54)')

TRACK_PREFIX = 'track_head.'


class ConversionError(ValueError):
    """A checkpoint that cannot be converted, or does not fit the model."""


def _short(keys: List[str], limit: int = 20) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f' (and {len(keys) - limit} more)'
                    if len(keys) > limit else '')


def source_kind(state_dict: Dict[str, torch.Tensor]) -> str:
    """``'vis'`` if the official head holds the track branch, else
    ``'image'``."""
    return VIS if any(
        k.startswith(('bbox_head.track_convs.', 'bbox_head.sipmask_track.'))
        for k in state_dict) else IMAGE


def rename(key: str) -> Optional[str]:
    """The key here of an official key (without ``module.``); None if no
    rule matches."""
    for pattern, target, _ in RULES:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(target)
    return None


def convert_state_dict(state_dict: Dict[str, torch.Tensor],
                       target: Optional[str] = None) -> Tuple[OrderedDict,
                                                               dict]:
    """Rename an official state dict.

    Args:
        state_dict (dict[str, Tensor]): The official ``state_dict`` (a
            ``module.`` prefix of a wrapped model is removed).
        target (str, optional): ``'image'`` (``SipMask``'s names) or
            ``'vis'`` (``SipMaskVIS``'s: ``detector.`` in front of the
            detector's keys); the source's kind by default. An image
            checkpoint may go to a VIS model (no track head then), not the
            reverse.

    Returns:
        tuple[OrderedDict, dict]: The renamed state dict (official order)
        and a report: ``source`` kind, ``target`` kind and ``dropped``
        (official key -> reason).

    Raises:
        ConversionError: Naming the keys no rule maps, or for a VIS
            checkpoint converted for an image model.
    """
    state_dict = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    kind = source_kind(state_dict)
    target = target or kind
    if target not in (IMAGE, VIS):
        raise ConversionError(f"target must be 'image' or 'vis', got "
                              f'{target!r}')
    if kind == VIS and target == IMAGE:
        raise ConversionError(
            'a SipMask-VIS checkpoint (bbox_head.track_convs / '
            'bbox_head.sipmask_track) has no place in an image SipMask: '
            'convert it for a SipMask-VIS model')
    has_norm = any(
        re.fullmatch(r'bbox_head\.(cls|reg)_convs\.\d+\.gn\.weight', k)
        for k in state_dict)
    converted, dropped, unmapped = OrderedDict(), OrderedDict(), []
    for key, value in state_dict.items():
        if (kind == IMAGE and not has_norm
                and re.fullmatch(UNUSED[0], key)):
            dropped[key] = UNUSED[1]
            continue
        new = rename(key)
        if new is None:
            unmapped.append(key)
            continue
        if target == VIS and not new.startswith(TRACK_PREFIX):
            new = 'detector.' + new
        converted[new] = value
    if unmapped:
        raise ConversionError(
            f'{len(unmapped)} keys of the checkpoint match no rule of the '
            'official SipMask / SipMask-VIS modules (is it an mmdet 1.x '
            f'SipMask checkpoint?): {_short(unmapped)}')
    return converted, dict(source=kind, target=target, dropped=dropped)


def image_to_vis_state_dict(
        state_dict: Dict[str, torch.Tensor]) -> OrderedDict:
    """The weights of an image detector of this package or mmdet in the
    names of a video model that holds it as ``detector``.

    Args:
        state_dict (dict[str, Tensor]): The image model's ``state_dict``
            (a ``module.`` prefix of a wrapped model is removed).

    Returns:
        OrderedDict: ``detector.`` in front of every key, the same tensors.

    Raises:
        ConversionError: If the weights are a video model's already.
    """
    state_dict = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    video = [
        k for k in state_dict if k.startswith(('detector.', TRACK_PREFIX))
    ]
    if video:
        raise ConversionError(
            f'{len(video)} keys of a video model (detector.* / '
            f'track_head.*), not an image detector\'s: {_short(video)}')
    return OrderedDict(('detector.' + k, v) for k, v in state_dict.items())


def check_against(converted: Dict[str, torch.Tensor],
                  model_state: Dict[str, torch.Tensor],
                  source: str,
                  skip_unmatched: bool = False) -> Tuple[OrderedDict,
                                                         dict]:
    """Check converted weights against a model's ``state_dict()``.

    Args:
        converted (dict[str, Tensor]): Output of :func:`convert_state_dict`.
        model_state (dict[str, Tensor]): The model's state dict (shapes).
        source (str): The official checkpoint's kind; for ``'image'`` the
            model's ``track_head.*`` may be absent.
        skip_unmatched (bool): Leave out the keys the model does not have
            or has with another shape instead of failing (the official
            ``load_from``'s ``strict=False``).

    Returns:
        tuple[OrderedDict, dict]: The weights to write and a report:
        ``skipped`` (key -> (checkpoint shape, model shape or None)) and
        ``absent`` (model keys not in the weights: the track head of an
        image checkpoint).

    Raises:
        ConversionError: Naming the keys the model does not have and the
            keys of another shape (without ``skip_unmatched``), and the
            model's keys the checkpoint lacks.
    """
    unmatched = OrderedDict(
        (k, (tuple(v.shape),
             tuple(model_state[k].shape) if k in model_state else None))
        for k, v in converted.items()
        if k not in model_state or v.shape != model_state[k].shape)
    unexpected = [k for k, (_, ours) in unmatched.items() if ours is None]
    mismatched = [
        f'{k} {theirs} vs {ours}' for k, (theirs, ours) in unmatched.items()
        if ours is not None
    ]
    absent = [k for k in model_state if k not in converted]
    allowed = [
        k for k in absent if source == IMAGE and k.startswith(TRACK_PREFIX)
    ]
    missing = [k for k in absent if k not in allowed]
    problems = []
    if unexpected and not skip_unmatched:
        problems.append(f'{len(unexpected)} keys not in the model: '
                        f'{_short(unexpected)}')
    if mismatched and not skip_unmatched:
        problems.append(f'{len(mismatched)} keys of another shape '
                        f'(checkpoint vs model): {_short(mismatched)}')
    if missing:
        problems.append(f'{len(missing)} keys of the model not in the '
                        f'checkpoint: {_short(missing)}')
    if problems:
        hint = ('' if skip_unmatched or not unmatched else
                ' (--skip-unmatched leaves out the keys the model does not '
                'have or has with another shape)')
        raise ConversionError('the converted checkpoint does not fit the '
                              "config's model: " + '; '.join(problems) +
                              hint)
    weights = OrderedDict(
        (k, v) for k, v in converted.items() if k not in unmatched)
    return weights, dict(skipped=unmatched, absent=allowed)


def load_official(path: str, trust: bool = False) -> Tuple[OrderedDict,
                                                           dict]:
    """The ``state_dict`` and ``meta`` of an official checkpoint (a bare
    state dict is accepted). Weights only unless ``trust``."""
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=not trust)
    except pickle.UnpicklingError as e:
        raise ConversionError(
            f'{path} holds objects beyond tensors and plain types; pass '
            '--trust to unpickle it fully (only for a file you trust)'
        ) from e
    if not isinstance(ckpt, dict):
        raise ConversionError(f'{path}: not a checkpoint dict, got '
                              f'{type(ckpt).__name__}')
    if 'state_dict' in ckpt:
        return ckpt['state_dict'], ckpt.get('meta') or {}
    return ckpt, {}


def model_state_of(config) -> Tuple[Dict[str, torch.Tensor], str]:
    """The state dict of the model ``config`` (a path or a loaded
    ``Config``) builds (no weights loaded) and its kind."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    if root not in sys.path:
        sys.path.insert(0, root)
    import mmdet_pep  # noqa: F401 (registers the modules)
    register_all_modules(init_default_scope=True)
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    model = MODELS.build(cfg.model)
    return model.state_dict(), VIS if 'detector' in cfg.model else IMAGE


def convert(src: str, dst: str, config=None,
            skip_unmatched: bool = False, trust: bool = False,
            from_image: bool = False,
            extra_meta: Optional[dict] = None) -> dict:
    """Convert ``src`` to ``dst`` (checked against ``config``'s model if
    given: a path or a loaded ``Config``) and return the report.

    With ``from_image``, ``src`` is an image detector of this package or
    mmdet and ``config`` (required) a video model holding it as
    ``detector`` (:func:`image_to_vis_state_dict`). ``extra_meta`` goes
    into the written ``meta``.
    """
    if from_image and config is None:
        raise ConversionError('--from-mmdet-pep-image needs --config: the '
                              'video model the weights are for')
    target = None
    if config is not None:
        model_state, target = model_state_of(config)
    if from_image:
        if target != VIS:
            raise ConversionError(
                '--from-mmdet-pep-image: the config\'s model holds no '
                '`detector`; give a video config (SipMask-VIS, MaskTrack '
                'R-CNN)')
        import mmdet_pep  # checkpoints of this package: weights only
        mmdet_pep.register_checkpoint_safe_globals()
        state_dict, meta = load_official(src, trust)
        converted = image_to_vis_state_dict(state_dict)
        report = dict(source=MMDET_PEP_IMAGE, target=VIS, dropped={})
    else:
        state_dict, meta = load_official(src, trust)
        converted, report = convert_state_dict(state_dict, target)
    report.update(skipped={}, absent=[])
    if config is not None:
        converted, checked = check_against(
            converted, model_state, IMAGE if from_image else
            report['source'], skip_unmatched)
        report.update(checked)
    out_meta = dict(
        converted_from=osp.basename(src),
        converter='tools/model_converters/sipmask_official_to_mmdet.py',
        source=report['source'],
        target=report['target'],
        config=getattr(config, 'filename', config),
        dropped=list(report['dropped']),
        skipped=list(report['skipped']),
        absent=list(report['absent']))
    if meta.get('CLASSES') and report['source'] == report['target'] and \
            not report['skipped']:
        out_meta['dataset_meta'] = dict(classes=tuple(meta['CLASSES']))
    if from_image and meta.get('dataset_meta') and not report['skipped']:
        out_meta['dataset_meta'] = meta['dataset_meta']
    out_meta.update(extra_meta or {})
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    torch.save(dict(meta=out_meta, state_dict=converted), dst)
    return dict(report, written=len(converted))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official SipMask / SipMask-VIS '
                        'checkpoint (mmdet 1.x)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--config', help="check the result against this config's model "
        '(and write its layout: SipMask or SipMaskVIS)')
    parser.add_argument(
        '--skip-unmatched', action='store_true',
        help="leave out the keys the config's model does not have or has "
        'with another shape, listed (as the official load_from did)')
    parser.add_argument(
        '--trust', action='store_true',
        help='unpickle the source fully (weights only otherwise)')
    parser.add_argument(
        '--from-mmdet-pep-image', action='store_true',
        help='the source is an image detector of this package or mmdet '
        '(backbone.*, neck.*, its heads): write it for the video model of '
        '--config, which holds it as `detector` (its track head absent)')
    args = parser.parse_args(argv)
    if args.from_mmdet_pep_image and not args.config:
        parser.error('--from-mmdet-pep-image needs --config (a video '
                     'config)')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = convert(args.src, args.dst, args.config,
                         args.skip_unmatched, args.trust,
                         args.from_mmdet_pep_image)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f"[sipmask_official_to_mmdet] {report['source']} checkpoint -> "
          f"{report['target']} model: {report['written']} keys to "
          f'{args.dst}')
    for key, reason in report['dropped'].items():
        print(f'  dropped {key}: {reason}')
    for key, (theirs, ours) in report['skipped'].items():
        print(f'  skipped {key}: {theirs} in the checkpoint, ' +
              ('not in the model' if ours is None else f'{ours} in the model'))
    if report['absent']:
        print(f"  not in the checkpoint: {len(report['absent'])} keys of the "
              'track head (trained from scratch, as officially)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
