"""Run an exported ``.onnx`` file with onnxruntime alone.

:class:`OrtDetector` checks an image and runs the graph;
``ORTDetInferencer`` (made by :func:`ort_inferencer`) is mmdet's
:class:`DetInferencer` with the graph in place of the PyTorch model: the
same call, the same test pipeline (read from the config that
:func:`..export.export_onnx` stores in the file), the same visualisations
(``out_dir/vis``) and JSON (``out_dir/preds``).
"""
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

CONFIG_KEY, CLASSES_KEY, PALETTE_KEY = ('mmdet_pep.config',
                                        'mmdet_pep.classes',
                                        'mmdet_pep.palette')
INSTALL_HINT = ('onnxruntime is not installed; install the deploy '
                'requirements with `pip install -r requirements/deploy.txt` '
                '(`make setup` does)')


def import_onnxruntime():
    """``onnxruntime``, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return onnxruntime


class OrtDetector:
    """An exported graph in an onnxruntime session.

    Args:
        onnx_file (str): A file written by ``tools/deploy/export_onnx.py``.
        num_threads (int, optional): onnxruntime's intra-op threads
            (default: onnxruntime's choice).
        spin (bool): Let idle threads spin-wait (onnxruntime's default,
            fastest when nothing else runs in the process).
    """

    def __init__(self,
                 onnx_file: str,
                 num_threads: Optional[int] = None,
                 spin: bool = True):
        ort = import_onnxruntime()
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        if not spin:
            # onnxruntime's idle threads spin for a while after each run,
            # taking a core from whatever runs next in the process (PyTorch,
            # when the two are timed round-robin).
            options.add_session_config_entry('session.intra_op.allow_spinning',
                                             '0')
        self.session = ort.InferenceSession(
            onnx_file, options, providers=['CPUExecutionProvider'])
        self.file = onnx_file
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        # (1, 3, H, W); H and W are strings for a --dynamic graph.
        self.input_shape = tuple(inp.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata = self.session.get_modelmeta().custom_metadata_map

    @property
    def dynamic(self) -> bool:
        """Whether the graph takes any input size."""
        return not all(isinstance(d, int) for d in self.input_shape[2:])

    def check_image(self, image: np.ndarray) -> np.ndarray:
        """The image as the graph's (1, 3, H, W) float32 input.

        Args:
            image (np.ndarray): (H, W, 3) as read by mmcv, or (3, H, W) /
                (1, 3, H, W); uint8 or float32, 0-255.

        Raises:
            TypeError: Another dtype.
            ValueError: Not 3 channels, or a size the graph does not take.
        """
        if not isinstance(image, np.ndarray):
            raise TypeError(f'{self.file}: the image must be a numpy array, '
                            f'got {type(image).__name__}')
        if image.dtype not in (np.uint8, np.float32):
            raise TypeError(
                f'{self.file}: the image must be uint8 or float32 (0-255), '
                f'got {image.dtype}')
        if image.ndim == 3 and image.shape[-1] in (1, 3, 4) and \
                image.shape[0] not in (1, 3, 4):
            image = image.transpose(2, 0, 1)
        if image.ndim == 3:
            image = image[None]
        if image.ndim != 4 or image.shape[0] != 1:
            raise ValueError(
                f'{self.file}: expected one image (H, W, 3), (3, H, W) or '
                f'(1, 3, H, W), got shape {image.shape}')
        if image.shape[1] != 3:
            raise ValueError(
                f'{self.file}: the graph takes 3 channels, got '
                f'{image.shape[1]} (shape {image.shape})')
        h, w = image.shape[2:]
        if not self.dynamic and (h, w) != tuple(self.input_shape[2:]):
            raise ValueError(
                f'{self.file}: the graph was exported for '
                f'{self.input_shape[2]}x{self.input_shape[3]} (H x W) '
                f'images, got {h}x{w}; resize it, or export with --dynamic')
        if min(h, w) < 32:
            raise ValueError(f'{self.file}: the image is {h}x{w}; the '
                             'graph needs at least 32 px a side')
        return np.ascontiguousarray(image, dtype=np.float32)

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """Run the graph on one image (see :meth:`check_image`).

        Returns:
            dict: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,),
            ``masks`` (N, H, W) uint8.
        """
        outs = self.session.run(None,
                                {self.input_name: self.check_image(image)})
        return dict(zip(self.output_names, outs))

    def classes(self) -> Optional[List[str]]:
        """Class names stored at export, if any."""
        value = self.metadata.get(CLASSES_KEY)
        return json.loads(value) if value else None


def rescale_instances(outs: Dict[str, np.ndarray], scale_factor,
                      ori_shape) -> Dict[str, torch.Tensor]:
    """Instances at the graph's input size -> at ``ori_shape``: boxes
    divided by the resize's ``scale_factor`` (w, h), masks resized
    bilinearly and thresholded at 0.5 (the graph outputs binary masks; the
    PyTorch model resizes probabilities, so edges may move by a pixel when
    the test pipeline resized the image)."""
    boxes = torch.from_numpy(outs['boxes'])
    masks = torch.from_numpy(outs['masks']).bool()
    if scale_factor is not None:
        boxes = boxes / boxes.new_tensor(scale_factor).repeat(2)
    h, w = ori_shape[:2]
    if masks.shape[-2:] != (h, w):
        if masks.shape[0]:
            masks = F.interpolate(
                masks[None].float(), size=(h, w), mode='bilinear',
                align_corners=False)[0] > 0.5
        else:
            masks = masks.new_zeros((0, h, w))
    return dict(
        bboxes=boxes,
        scores=torch.from_numpy(outs['scores']),
        labels=torch.from_numpy(outs['labels']),
        masks=masks)


class _OrtModel(torch.nn.Module):
    """What DetInferencer uses of a model (``test_step``, ``dataset_meta``,
    ``cfg``), backed by an :class:`OrtDetector`."""

    def __init__(self, detector: OrtDetector, cfg, dataset_meta: dict):
        super().__init__()
        self.detector = detector
        self.cfg = cfg
        self.dataset_meta = dataset_meta

    def test_step(self, data: dict) -> list:
        from mmengine.structures import InstanceData
        results = []
        for img, sample in zip(data['inputs'], data['data_samples']):
            outs = self.detector(img.numpy())
            pred = InstanceData(**rescale_instances(
                outs, sample.metainfo.get('scale_factor'),
                sample.metainfo['ori_shape']))
            sample.pred_instances = pred
            results.append(sample)
        return results


def _load_cfg(detector: OrtDetector, config=None):
    """The config given, or the one stored in the graph at export."""
    from mmengine.config import Config
    if config is not None:
        return config if isinstance(config, Config) else Config.fromfile(
            config)
    text = detector.metadata.get(CONFIG_KEY)
    if not text:
        raise ValueError(f'{detector.file} stores no config; pass the '
                         'config it was exported from')
    return Config.fromstring(text, file_format='.py')


def ort_inferencer(onnx_file: str,
                   config=None,
                   num_threads: Optional[int] = None,
                   palette: str = 'none',
                   show_progress: bool = False):
    """An :class:`ORTDetInferencer` for ``onnx_file``."""
    from mmdet.apis import DetInferencer

    class ORTDetInferencer(DetInferencer):
        """mmdet's DetInferencer with an onnxruntime session as model."""

        def _init_model(self, cfg, weights, device):
            detector = OrtDetector(onnx_file, num_threads)
            classes = detector.classes() or list(
                cfg.get('metainfo', {}).get('classes', ()))
            meta = dict(classes=tuple(classes))
            stored = detector.metadata.get(PALETTE_KEY)
            if self.palette != 'none':
                meta['palette'] = self.palette
            elif stored:
                meta['palette'] = [tuple(c) for c in json.loads(stored)]
            else:
                meta['palette'] = 'random'
            return _OrtModel(detector, cfg, meta)

    detector = OrtDetector(onnx_file, num_threads)
    cfg = _load_cfg(detector, config)
    return ORTDetInferencer(
        model=cfg, palette=palette, show_progress=show_progress,
        device='cpu')
