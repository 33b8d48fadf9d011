"""Image loading that fails loudly and never corrupts high-bit-depth images.

What mmcv's ``LoadImageFromFile`` (the loader of mmdet's pipelines) does
with unusual files, with its default ``color_type='color'`` and the cv2
backend:

- grayscale: replicated to three channels (fine);
- RGBA: the alpha channel is dropped (fine for detection);
- 16-bit PNG using the full 0..65535 range: reduced to 8 bits (fine);
- 16-bit PNG with fewer significant bits (e.g. 12-bit sensor data stored
  in 0..4095): divided by 256 like full-range data, so the image comes out
  almost black (0..15), **silently**; with ``color_type='unchanged'`` the
  uint16 values reach the data preprocessor, whose mean/std assume
  0..255, again silently;
- missing file: ``FileNotFoundError`` naming the file (fine);
- corrupt file: an ``AssertionError`` naming the file, gone under
  ``python -O``; an empty (0-byte) file gives a ``cv2.error`` and the
  pillow backend an ``UnidentifiedImageError``, neither naming the file.

:class:`CheckedLoadImageFromFile` is a drop-in replacement that keeps every
option of the original and fixes the cases above.
"""
import errno
import io
import logging
from typing import Optional

import cv2
import mmcv
import numpy as np
from mmcv.image.io import imread_flags
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from PIL import Image, ImageOps

from mmdet.registry import TRANSFORMS

from ..utils.deprecation import deprecated_alias


class CorruptImageError(OSError):
    """An image file exists but cannot be decoded into an image."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file in every failure and maps
    16-bit images to 0..255 with an explicit bit depth.

    Differences from :class:`mmcv.transforms.LoadImageFromFile`:

    - Any failure to read or decode raises an error whose message holds the
      file path: :class:`FileNotFoundError` for a missing file,
      :class:`CorruptImageError` (an ``OSError``) for a file that is empty,
      truncated or not an image, ``OSError`` for other read errors. With
      ``ignore_empty=True`` the image is skipped instead (the data set then
      draws another one in training) and a warning names the file.
    - 16-bit images are decoded at full depth (cv2 backend; pillow: 16-bit
      grayscale, pillow itself reduces 16-bit colour to 8 bits correctly)
      and scaled by ``255 / (2 ** bit_depth - 1)`` to uint8, whatever
      ``color_type``; a
      pixel above ``2 ** bit_depth - 1`` raises ``ValueError`` naming the
      file, so a wrong ``bit_depth`` cannot clip silently. Images of other
      non-uint8 types (e.g. float TIFF) raise ``ValueError``.
    - With a ``color`` ``color_type`` the result always has three channels
      (BGR): grayscale is replicated and an alpha channel dropped, for every
      decoding backend.

    8-bit images give exactly what ``LoadImageFromFile`` gives.

    Args:
        bit_depth (int): Significant bits of 16-bit images, 9..16.
            Defaults to 16 (the PNG standard: samples use the full range).
        **kwargs: Arguments of ``LoadImageFromFile`` (``to_float32``,
            ``color_type``, ``imdecode_backend``, ``ignore_empty``,
            ``backend_args``).
    """

    def __init__(self, bit_depth: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 9 <= bit_depth <= 16:
            raise ValueError(
                f'bit_depth applies to 16-bit images and must be in 9..16, '
                f'got {bit_depth}')
        self.bit_depth = bit_depth
        if isinstance(self.color_type, str) and \
                self.color_type not in imread_flags:
            raise ValueError(f'color_type must be one of '
                             f'{list(imread_flags)}, got {self.color_type!r}')

    def _decode_flag(self):
        """cv2 flag that keeps 16 bits; other backends get ``color_type``."""
        if self.imdecode_backend != 'cv2' or not isinstance(
                self.color_type, str):
            return self.color_type
        flag = imread_flags[self.color_type]
        if flag != cv2.IMREAD_UNCHANGED:
            flag |= cv2.IMREAD_ANYDEPTH
        return flag

    def _fail(self, error: Exception, filename: str) -> None:
        if not self.ignore_empty:
            raise error
        print_log(
            f'Skipping image {filename!r}: {error}',
            'current',
            level=logging.WARNING)

    def _read(self, filename: str) -> Optional[bytes]:
        try:
            if self.file_client_args is not None:
                file_client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                return file_client.get(filename)
            return fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError as e:
            err = FileNotFoundError(errno.ENOENT, 'Image file not found',
                                    filename)
            err.__cause__ = e
        except Exception as e:  # noqa: B902 (any backend's read error)
            err = OSError(f'Cannot read image file {filename!r}: '
                          f'{type(e).__name__}: {e}')
            err.__cause__ = e
        self._fail(err, filename)
        return None

    def _pillow_16bit(self, img_bytes: bytes) -> Optional[np.ndarray]:
        """16-bit grayscale through pillow, which mmcv would clip to 255.

        Returns None for every other image or backend.
        """
        if (self.imdecode_backend != 'pillow'
                or not isinstance(self.color_type, str)
                or self.color_type == 'unchanged'):
            return None
        with io.BytesIO(img_bytes) as buff:
            img = Image.open(buff)
            if img.mode not in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):
                return None
            if not self.color_type.endswith('ignore_orientation'):
                img = ImageOps.exif_transpose(img)
            array = np.array(img)
        if array.dtype != np.uint16:  # mode 'I' is int32
            if array.min() < 0 or array.max() > 65535:
                raise ValueError(f'{array.dtype} pixels outside 0..65535')
            array = array.astype(np.uint16)
        return array

    def _decode(self, img_bytes: bytes, filename: str) -> Optional[np.ndarray]:
        reason = None
        if len(img_bytes) == 0:
            reason = 'the file is empty'
        else:
            try:
                img = self._pillow_16bit(img_bytes)
                if img is None:
                    img = mmcv.imfrombytes(
                        img_bytes,
                        flag=self._decode_flag(),
                        backend=self.imdecode_backend)
            except Exception as e:  # noqa: B902 (any decoder's error)
                reason = f'{type(e).__name__}: {e}'.strip()
            else:
                if img is None or img.size == 0:
                    reason = 'the decoder returned no image'
        if reason is not None:
            err = CorruptImageError(
                f'Cannot decode image file {filename!r} ({len(img_bytes)} '
                f'bytes): {reason}. The file is corrupt, truncated or not '
                f'an image.')
            self._fail(err, filename)
            return None
        return img

    def _to_uint8(self, img: np.ndarray, filename: str) -> np.ndarray:
        if img.dtype == np.uint8:
            return img
        if img.dtype != np.uint16:
            raise ValueError(
                f'Image file {filename!r} has {img.dtype} pixels; only 8- '
                f'and 16-bit integer images are supported')
        top = (1 << self.bit_depth) - 1
        high = int(img.max())
        if high > top:
            raise ValueError(
                f'Image file {filename!r} has a pixel value {high} above '
                f'{top}, the maximum of bit_depth={self.bit_depth}; set '
                f'bit_depth of {type(self).__name__} to the bits the '
                f'images really use')
        wide = img.astype(np.uint32)
        return ((wide * 255 + top // 2) // top).astype(np.uint8)

    def _channels(self, img: np.ndarray) -> np.ndarray:
        if not (isinstance(self.color_type, str)
                and self.color_type.startswith('color')):
            return img
        if img.ndim == 2:
            return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if img.shape[2] == 1:
            return np.repeat(img, 3, axis=2)
        if img.shape[2] == 4:
            return np.ascontiguousarray(img[..., :3])
        return img

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape``; None if the image was skipped (``ignore_empty``).
        """
        filename = results['img_path']
        img_bytes = self._read(filename)
        if img_bytes is None:
            return None
        img = self._decode(img_bytes, filename)
        if img is None:
            return None
        img = self._channels(self._to_uint8(img, filename))
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', bit_depth={self.bit_depth})'


#: Deprecated name of :class:`CheckedLoadImageFromFile` (removed in 0.3.0).
PEPLoadImageFromFile = deprecated_alias(CheckedLoadImageFromFile,
                                        'PEPLoadImageFromFile', TRANSFORMS)
