"""read_image / write_image / to_float / from_float: layouts, bit depths, colour order, errors."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from skimage import data

from mmdeploy_srcnn.utils.image import ImageError, from_float, read_image, to_float, write_image


def _rgba(height: int = 24, width: int = 32, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, np.iinfo(dtype).max, (height, width, 4), endpoint=True).astype(dtype)


@pytest.mark.parametrize('suffix', ['.png', '.tif'])
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
@pytest.mark.parametrize('channels', [None, 3, 4])
def test_lossless_round_trip_keeps_layout_and_depth(tmp_path, suffix, dtype, channels):
    image = _rgba(dtype=dtype)
    image = image[..., 0] if channels is None else image[..., :channels]
    path = tmp_path / f'image{suffix}'
    write_image(path, image)
    read = read_image(path)
    assert read.dtype == dtype and read.shape == image.shape
    np.testing.assert_array_equal(read, image)


def test_channels_are_rgb_on_both_sides_of_opencv(tmp_path):
    path = tmp_path / 'red.png'
    cv2.imwrite(str(path), np.array([[[0, 0, 255, 128]]], np.uint8))  # BGRA: opaque-ish red
    np.testing.assert_array_equal(read_image(path), [[[255, 0, 0, 128]]])
    write_image(path, np.array([[[255, 0, 0]]], np.uint8))
    np.testing.assert_array_equal(cv2.imread(str(path)), [[[0, 0, 255]]])


def test_real_jpeg_photo_reads_as_rgb(tmp_path):
    photo = data.chelsea()  # RGB, the cat's fur is orange: red > blue
    path = tmp_path / 'chelsea.jpg'
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    read = read_image(path)
    assert read.shape == photo.shape and read.dtype == np.uint8
    assert np.abs(read.astype(int) - photo).mean() < 2


def test_jpeg_exif_orientation_is_applied(tmp_path):
    path = tmp_path / 'rotated.jpg'
    pixels = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = pixels.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    pixels.save(path, exif=exif)
    assert read_image(path).shape == (40, 20, 3)


def test_sixteen_bit_to_jpeg_is_rounded_to_eight_bits(tmp_path):
    image = np.full((8, 8, 3), 257 * 200 + 100, np.uint16)
    write_image(tmp_path / 'deep.jpg', image)
    assert np.abs(read_image(tmp_path / 'deep.jpg').astype(int) - 200).max() <= 1


def test_write_replaces_atomically_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'out.png'
    write_image(path, np.zeros((4, 4), np.uint8))
    write_image(path, np.full((4, 4), 7, np.uint8))
    assert read_image(path).max() == 7
    assert [child.name for child in tmp_path.iterdir()] == ['out.png']


@pytest.mark.parametrize('name, image, message', [
    ('out.jpg', _rgba(), 'cannot store the alpha channel'),
    ('out.xyz', _rgba()[..., :3], "cannot write .xyz"),
    ('out', _rgba()[..., :3], 'cannot write files without a suffix'),
    ('out.png', _rgba()[..., :3].astype(np.float32), 'cannot write pixel type float32'),
    ('out.png', np.zeros((24, 32, 5), np.uint8), 'cannot write an array of shape (24, 32, 5)'),
    ('out.jpg', _rgba()[..., :2], 'cannot store the alpha channel'),
])
def test_write_refusals_keep_the_old_file(tmp_path, name, image, message):
    path = tmp_path / name
    path.write_bytes(b'old')
    with pytest.raises(ImageError, match=f'^{path}: .*' + message.replace('(', r'\(')
                       .replace(')', r'\)')):
        write_image(path, image)
    assert path.read_bytes() == b'old'
    assert len(list(tmp_path.iterdir())) == 1


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _encoded(suffix: str) -> bytes:
    return cv2.imencode(suffix, data.astronaut()[:64, :64, ::-1])[1].tobytes()


def _cut(content: bytes) -> bytes:
    return content[:len(content) // 2]


@pytest.mark.parametrize('make, message', [
    (lambda tmp: tmp / 'missing.png', 'no such file'),
    (lambda tmp: tmp, 'is a directory, not an image file'),
    (lambda tmp: _write(tmp, 'empty.png', b''), r'empty file \(0 bytes\)'),
    (lambda tmp: _write(tmp, 'notes.png', b'hello, not pixels'), r'not an image \(unknown'),
    (lambda tmp: _write(tmp, 'cut.jpg', _cut(_encoded('.jpg'))), 'truncated or corrupt JPEG file'),
    (lambda tmp: _write(tmp, 'cut.png', _cut(_encoded('.png'))), 'truncated or corrupt PNG file'),
    (lambda tmp: _write(tmp, 'cut.bmp', _cut(_encoded('.bmp'))), 'truncated or corrupt BMP'),
    (lambda tmp: _write(tmp, 'float.tif', cv2.imencode('.tif', np.ones((4, 4), np.float32))[1]
                        .tobytes()), 'unsupported pixel type float32'),
])
def test_read_errors_name_the_file_and_the_problem(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ImageError, match=f'^{path}: {message}'):
        read_image(path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = _write(tmp_path, 'locked.png', _encoded('.png'))
    # chmod 000 does not stop root (CI runs as root), so the denial is injected.
    real_open = os.open

    def denied(name, *args, **kwargs):
        if Path(name) == path:
            raise PermissionError(13, 'Permission denied', str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, 'open', denied)
    with pytest.raises(ImageError, match=f'^{path}: permission denied'):
        read_image(path)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(st.sampled_from([np.uint8, np.uint16]),
                  hnp.array_shapes(min_dims=2, max_dims=3, max_side=6)))
def test_float_round_trip_is_exact(image):
    as_float = to_float(image)
    assert as_float.dtype == np.float32 and 0 <= as_float.min() <= as_float.max() <= 1
    np.testing.assert_array_equal(from_float(as_float, image.dtype), image)


def test_from_float_clips_and_rounds_to_nearest():
    values = np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.5], np.float32)
    np.testing.assert_array_equal(from_float(values, np.uint8), [0, 0, 0, 1, 255, 255])
    np.testing.assert_array_equal(from_float(values, np.uint16)[[0, -1]], [0, 65535])
    np.testing.assert_array_equal(from_float(values, np.float32)[[0, -1]], [0.0, 1.0])
