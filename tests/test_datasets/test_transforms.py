"""CheckedLoadImageFromFile: failures name the file, 16-bit images keep their
values, and 8-bit images load exactly as with mmcv's LoadImageFromFile."""
import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile

from mmdet.registry import TRANSFORMS
from mmdet_pep.datasets import CheckedLoadImageFromFile, CorruptImageError

BACKENDS = ['cv2', 'pillow']


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """8-bit BGR reference and the same picture stored in other formats."""
    d = tmp_path_factory.mktemp('imgs')
    bgr = np.random.RandomState(0).randint(0, 256, (24, 40, 3), np.uint8)
    gray = bgr[..., 0].copy()
    paths = {}

    def write(name, img):
        paths[name] = str(d / name)
        assert cv2.imwrite(paths[name], img)

    write('rgb.png', bgr)
    write('rgb.jpg', bgr)
    write('gray.png', gray)
    write('rgba.png', np.dstack([bgr, np.full(gray.shape, 7, np.uint8)]))
    write('u16.png', bgr.astype(np.uint16) * 257)
    write('u16gray.png', gray.astype(np.uint16) * 257)
    # 12-bit samples in a 16-bit file, the usual sensor/microscopy case.
    write('u12gray.png', ((gray.astype(np.uint32) * 4095 + 127) // 255)
          .astype(np.uint16))
    write('float.tiff', bgr.astype(np.float32) / 255)
    with open(paths['rgb.png'], 'rb') as f:
        data = f.read()
    for name, content in (('empty.png', b''),
                          ('truncated.png', data[:len(data) // 2]),
                          ('garbage.png', b'\x89PNG\r\n\x1a\nnot an image')):
        paths[name] = str(d / name)
        with open(paths[name], 'wb') as f:
            f.write(content)
    paths['missing.png'] = str(d / 'missing.png')
    return bgr, gray, paths


def load(path, **kwargs):
    return CheckedLoadImageFromFile(**kwargs)(dict(img_path=path))


def test_registered_and_repr():
    t = TRANSFORMS.build(dict(type='CheckedLoadImageFromFile', bit_depth=12))
    assert isinstance(t, CheckedLoadImageFromFile)
    assert 'CheckedLoadImageFromFile(' in repr(t) and 'bit_depth=12' in repr(t)


@pytest.mark.parametrize('bit_depth', [8, 17])
def test_bit_depth_is_validated(bit_depth):
    with pytest.raises(ValueError, match='bit_depth'):
        CheckedLoadImageFromFile(bit_depth=bit_depth)


def test_color_type_is_validated():
    with pytest.raises(ValueError, match="color_type.*'colour'"):
        CheckedLoadImageFromFile(color_type='colour')


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['rgb.png', 'rgb.jpg', 'gray.png',
                                  'rgba.png'])
@pytest.mark.parametrize('color_type', ['color', 'grayscale', 'unchanged'])
def test_8bit_images_load_as_with_mmcv(images, backend, name, color_type):
    path = images[2][name]
    kwargs = dict(color_type=color_type, imdecode_backend=backend)
    ref = LoadImageFromFile(**kwargs)(dict(img_path=path))
    res = load(path, **kwargs)
    np.testing.assert_array_equal(res['img'], ref['img'])
    assert res['img_shape'] == ref['img_shape'] == res['ori_shape']


@pytest.mark.parametrize('backend', BACKENDS)
def test_gray_and_rgba_give_three_channels(images, backend):
    bgr, gray, paths = images
    img = load(paths['gray.png'], imdecode_backend=backend)['img']
    assert img.shape == gray.shape + (3, ) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)
    img = load(paths['rgba.png'], imdecode_backend=backend)['img']
    np.testing.assert_array_equal(img, bgr)  # alpha dropped


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('color_type', ['color', 'unchanged'])
def test_16bit_full_range_maps_exactly_to_8bit(images, backend, color_type):
    bgr, gray, paths = images
    img = load(paths['u16gray.png'], color_type=color_type,
               imdecode_backend=backend)['img']
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img if img.ndim == 2 else img[..., 0],
                                  gray)
    if backend == 'cv2':  # pillow itself reduces 16-bit RGB to 8 bits
        img = load(paths['u16.png'], color_type=color_type)['img']
        assert img.dtype == np.uint8
        np.testing.assert_array_equal(img, bgr)


def test_stock_loader_corrupts_high_bit_depth(images):
    """Why the transform exists: 12-bit data come out almost black, and
    ``color_type='unchanged'`` hands uint16 to the preprocessor."""
    paths = images[2]
    dark = LoadImageFromFile()(dict(img_path=paths['u12gray.png']))['img']
    assert dark.max() <= 16
    raw = LoadImageFromFile(color_type='unchanged')(
        dict(img_path=paths['u16gray.png']))['img']
    assert raw.dtype == np.uint16


@pytest.mark.parametrize('backend', BACKENDS)
def test_12bit_with_bit_depth_12(images, backend):
    bgr, gray, paths = images
    img = load(paths['u12gray.png'], bit_depth=12,
               imdecode_backend=backend)['img']
    assert img.shape == gray.shape + (3, )
    np.testing.assert_array_equal(img[..., 1], gray)


def test_bit_depth_too_small_is_an_error_naming_the_file(images):
    path = images[2]['u16gray.png']
    with pytest.raises(ValueError, match=r'u16gray\.png.*bit_depth=12'):
        load(path, bit_depth=12)


def test_float_images_are_refused(images):
    with pytest.raises(ValueError, match=r'float\.tiff.*float32'):
        load(images[2]['float.tiff'])


def test_to_float32(images):
    img = load(images[2]['u16.png'], to_float32=True)['img']
    assert img.dtype == np.float32
    np.testing.assert_array_equal(img, images[0].astype(np.float32))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['empty.png', 'truncated.png',
                                  'garbage.png'])
def test_corrupt_file_error_names_the_file(images, backend, name):
    path = images[2][name]
    with pytest.raises(CorruptImageError) as info:
        load(path, imdecode_backend=backend)
    assert path in str(info.value)
    assert isinstance(info.value, OSError)


def test_stock_loader_does_not_name_an_empty_file(images):
    path = images[2]['empty.png']
    with pytest.raises(Exception) as info:
        LoadImageFromFile()(dict(img_path=path))
    assert path not in str(info.value)


def test_missing_file_error_names_the_file(images):
    path = images[2]['missing.png']
    with pytest.raises(FileNotFoundError) as info:
        load(path)
    assert info.value.filename == path and path in str(info.value)


def test_read_error_of_other_kinds_names_the_file(images, monkeypatch):
    from mmengine import fileio

    def broken(*args, **kwargs):
        raise PermissionError('denied')

    monkeypatch.setattr(fileio, 'get', broken)
    path = images[2]['rgb.png']
    with pytest.raises(OSError, match=r'rgb\.png.*PermissionError: denied'):
        load(path)


@pytest.mark.parametrize('name', ['missing.png', 'empty.png', 'garbage.png'])
def test_ignore_empty_skips_the_image(images, name):
    # The data set then draws another image (mmengine's BaseDataset).
    assert load(images[2][name], ignore_empty=True) is None
