"""Build the deployable graph of a config and write it as ONNX.

The exporter is ``torch.onnx.export`` with TorchScript tracing
(``dynamo=False``), opset 17, standard ONNX operators only: onnxruntime
runs the file without a custom-op library. mmdeploy 1.3.1 was tried first
and does not run with this stack (see ``docs/deploy.md``).
"""
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .heads import DEPLOY_HEADS
from .model import OUTPUT_NAMES, DeployModel, NotExportableError

OPSET = 17
INPUT_NAME = 'image'
# Detectors that see more than one image per prediction.
VIDEO_DETECTORS = ('SipMaskVIS', 'MaskTrackRCNN', 'Mask2FormerVideo')


def head_type(detector: nn.Module) -> str:
    """The type name that selects the post-processing: the mask head's,
    or the box head's for detectors whose box head predicts masks."""
    head = getattr(detector, 'mask_head', None)
    if head is None:
        head = getattr(detector, 'bbox_head', None)
    return type(head).__name__ if head is not None else 'none'


def check_exportable(detector: nn.Module) -> None:
    """Raise :class:`NotExportableError` with a one-line reason unless
    :data:`DEPLOY_HEADS` has the detector's head."""
    name = type(detector).__name__
    if name in VIDEO_DETECTORS or hasattr(detector, 'track_head'):
        raise NotExportableError(
            f'{name} is a video model (it tracks instances across frames); '
            'only image models export to ONNX for now')
    head = head_type(detector)
    if head not in DEPLOY_HEADS:
        raise NotExportableError(
            f'{name} with a {head} has no static-shape post-processing for '
            f'export; exportable heads: {", ".join(sorted(DEPLOY_HEADS))}')


def check_config(cfg) -> None:
    """Raise :class:`NotExportableError` before building a model that
    cannot be exported: a video model (its ``model.detector`` sees several
    frames and tracks instances)."""
    model = cfg.get('model', {})
    name = model.get('type', '?')
    if name in VIDEO_DETECTORS or 'detector' in model:
        raise NotExportableError(
            f'{name} is a video model (it tracks instances across frames); '
            'only image models export to ONNX for now')


def build_deploy_model(config,
                       checkpoint: Optional[str] = None,
                       cfg_options: Optional[dict] = None) -> DeployModel:
    """A :class:`DeployModel` from a config (path or
    :class:`mmengine.Config`) and an optional checkpoint, on the CPU."""
    from mmdet.apis import init_detector

    from mmdet_pep import register_checkpoint_safe_globals
    register_checkpoint_safe_globals()
    if isinstance(config, str) and not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    if isinstance(config, str):
        from mmengine.config import Config
        config = Config.fromfile(config)
    check_config(config)
    detector = init_detector(
        config, checkpoint, device='cpu', cfg_options=cfg_options)
    if checkpoint is None:
        # init_detector falls back to COCO's classes without a checkpoint;
        # the config's data set names the model's.
        metainfo = detector.cfg.test_dataloader.dataset.get('metainfo')
        if metainfo and metainfo.get('classes'):
            detector.dataset_meta = dict(metainfo)
    check_exportable(detector)
    return DeployModel(detector, DEPLOY_HEADS[head_type(detector)])


def export_onnx(model: DeployModel,
                out: str,
                shape: Tuple[int, int] = (128, 128),
                dynamic: bool = False,
                example: Optional[torch.Tensor] = None) -> str:
    """Trace ``model`` on an image of ``shape`` (H, W) and write ``out``.

    Args:
        model (DeployModel): The model.
        out (str): The ``.onnx`` file.
        shape (tuple[int, int]): Input size of a fixed-size graph, and of
            the tracing example.
        dynamic (bool): Whether H and W of the input (and the outputs' N, H
            and W) are free.
        example (Tensor, optional): The image traced, (1, 3, H, W); a
            mid-grey image of ``shape`` by default. The graph does not depend
            on it: every data-dependent step has a static form.

    Returns:
        str: ``out``.
    """
    model.eval()
    if example is None:
        example = torch.full((1, 3, *shape), 128.)
    dynamic_axes = {name: {0: 'num'} for name in OUTPUT_NAMES}
    if dynamic:
        dynamic_axes[INPUT_NAME] = {2: 'height', 3: 'width'}
        dynamic_axes['masks'] = {0: 'num', 1: 'height', 2: 'width'}
    import warnings
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns at every Python number taken from a tensor; the
        # static post-processing only does so for sizes that are constant
        # for a fixed input size or carried as tensors otherwise.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            model, (example, ),
            out,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True)
    _store_metadata(model, out)
    return out


def _store_metadata(model: DeployModel, out: str) -> None:
    """Put the config, class names and palette into the file, so that the
    ONNX file alone is enough for :mod:`.inferencer`."""
    import json

    import onnx

    from .inferencer import CLASSES_KEY, CONFIG_KEY, PALETTE_KEY
    proto = onnx.load(out)
    meta = dict(getattr(model.detector, 'dataset_meta', None) or {})
    entries = {}
    cfg = getattr(model.detector, 'cfg', None)
    if cfg is not None:
        entries[CONFIG_KEY] = cfg.pretty_text
    if meta.get('classes'):
        entries[CLASSES_KEY] = json.dumps(list(meta['classes']))
    if isinstance(meta.get('palette'), (list, tuple)):
        entries[PALETTE_KEY] = json.dumps([list(c) for c in meta['palette']])
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, out)


def supported_heads() -> Sequence[str]:
    """The head types that export."""
    return sorted(DEPLOY_HEADS)
