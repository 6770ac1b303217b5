"""Image files and pixel values, torch-free (the upscaling app and the deploy tool use it).

In memory an image is a numpy array in RGB order (OpenCV's BGR never leaves this module):
``HxW`` grayscale, ``HxWx3`` RGB or ``HxWx4`` RGBA, ``uint8`` or ``uint16``. The model works on
float32 in [0, 1]; :func:`to_float` and :func:`from_float` convert, keeping the bit depth.

Errors are :class:`ImageError` with a one-line message that starts with the file name, so a
command-line tool can print it as is.
"""
import os
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from .fileio import atomic_write

PathLike = Union[str, os.PathLike]

# Output formats: suffix -> (stores 16-bit samples, stores an alpha channel).
_WRITE_FORMATS = {
    '.png': (True, True),
    '.tif': (True, True),
    '.tiff': (True, True),
    '.webp': (False, True),
    '.bmp': (False, True),
    '.jpg': (False, False),
    '.jpeg': (False, False),
}
IMAGE_SUFFIXES = tuple(_WRITE_FORMATS)
"""Suffixes the app takes from a folder and can write (reading accepts any OpenCV format)."""

# Leading bytes of formats OpenCV decodes: tells "truncated or corrupt" from "not an image".
_SIGNATURES = {
    b'\x89PNG\r\n\x1a\n': 'PNG',
    b'\xff\xd8\xff': 'JPEG',
    b'II*\x00': 'TIFF',
    b'MM\x00*': 'TIFF',
    b'BM': 'BMP',
    b'GIF8': 'GIF',
    b'\x00\x00\x00\x0cjP  ': 'JPEG 2000',
}
_JPEG_START_OF_SCAN = b'\xff\xda'
_JPEG_END_OF_IMAGE = b'\xff\xd9'
_PNG_END = b'IEND'


class ImageError(Exception):
    """An image file that cannot be read or written; the message names the file."""


def _format_of(data: bytes) -> Optional[str]:
    """The format named by the leading bytes, or None for an unknown format."""
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'WebP'
    return next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)


def _is_truncated(file_format: Optional[str], data: bytes) -> bool:
    """True when a JPEG or PNG file ends before its image data does.

    libjpeg decodes a cut-off JPEG without failing (it fills the missing rows with grey and only
    prints a warning), and libpng prints its own error line; checking the bytes first gives a
    clear error instead. A JPEG's last scan must be followed by an end-of-image marker (marker
    bytes cannot occur inside entropy-coded data, where 0xFF is stuffed as 0xFF00); a PNG
    must contain its IEND chunk.
    """
    if file_format == 'JPEG':
        return data.rfind(_JPEG_END_OF_IMAGE) < data.rfind(_JPEG_START_OF_SCAN)
    if file_format == 'PNG':
        return _PNG_END not in data
    return False


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as ``HxW``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA), uint8 or uint16.

    Pixels are returned as stored (``IMREAD_UNCHANGED``: bit depth, grayscale and alpha kept),
    except that JPEGs, which have no alpha, are decoded with their EXIF orientation applied:
    the output carries no EXIF, so its pixels must already stand upright. The bytes are read
    here and decoded with ``cv2.imdecode`` so that each failure gets its own message and
    non-ASCII paths work.

    Raises:
        ImageError: missing, unreadable, empty, truncated, not an image, or a pixel type other
            than 8/16-bit.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f'{path}: no such file') from None
    except IsADirectoryError:
        raise ImageError(f'{path}: is a directory, not an image file') from None
    except PermissionError:
        raise ImageError(f'{path}: permission denied') from None
    except OSError as err:
        raise ImageError(f'{path}: cannot read the file ({err.strerror or err})') from None
    if not data:
        raise ImageError(f'{path}: empty file (0 bytes)')
    file_format = _format_of(data)
    if _is_truncated(file_format, data):
        raise ImageError(f'{path}: truncated {file_format} file (it ends inside the image data)')
    flags = (cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if file_format == 'JPEG' \
        else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:  # some decoders raise on corrupt data instead of returning None
        image = None
    if image is None:
        if file_format is None:
            raise ImageError(f'{path}: not an image (unknown file format)')
        raise ImageError(f'{path}: truncated or corrupt {file_format} file')
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f'{path}: unsupported pixel type {image.dtype} '
                         '(8-bit and 16-bit images are supported)')
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return image


def write_image(path: PathLike, image: np.ndarray) -> None:
    """Write an RGB(A) or grayscale uint8/uint16 image; the format follows the suffix.

    The file appears complete or not at all (encoded in memory, then written to a temporary
    name and renamed). A 16-bit image written to an 8-bit-only format (JPEG, WebP, BMP) is
    rounded to 8 bits; an alpha channel that the format cannot store is an error rather than
    silently dropped, because the hidden colours of transparent pixels would show.

    Raises:
        ImageError: unsupported suffix, pixel type or layout, alpha for a format without it,
            or an encoding/writing failure.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITE_FORMATS:
        raise ImageError(f'{path}: cannot write {suffix or "files without a suffix"} '
                         f'(use one of {", ".join(IMAGE_SUFFIXES)})')
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f'{path}: cannot write pixel type {image.dtype} (uint8 or uint16 only)')
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.ndim not in (2, 3) or channels not in (1, 3, 4):
        raise ImageError(f'{path}: cannot write an array of shape {image.shape} '
                         '(expected HxW, HxWx3 or HxWx4)')
    keeps_16_bit, keeps_alpha = _WRITE_FORMATS[suffix]
    if channels == 4 and not keeps_alpha:
        raise ImageError(f'{path}: {suffix} cannot store the alpha channel '
                         '(write .png, .tif or .webp instead)')
    if image.dtype == np.uint16 and not keeps_16_bit:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if channels in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if channels == 4 else cv2.COLOR_RGB2BGR)
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error as err:
        raise ImageError(f'{path}: OpenCV cannot encode this image as {suffix} '
                         f'({str(err).strip().splitlines()[-1]})') from None
    if not ok:
        raise ImageError(f'{path}: OpenCV failed to encode the image as {suffix}')
    try:
        with atomic_write(path, 'wb') as file:
            file.write(encoded.tobytes())
    except OSError as err:
        raise ImageError(f'{path}: cannot write the file ({err.strerror or err})') from None


def to_float(image: np.ndarray) -> np.ndarray:
    """Pixel values as float32 in [0, 1]: uint8 / 255, uint16 / 65535.

    Float input is taken to be in [0, 1] already and returned as float32.
    """
    if image.dtype in (np.uint8, np.uint16):
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise TypeError(f'unsupported pixel type {image.dtype} (uint8, uint16 or float)')


def from_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float pixels in [0, 1] back to ``dtype``: clipped to [0, 1], then rounded to nearest.

    For a float ``dtype`` the values are only clipped.
    """
    dtype = np.dtype(dtype)
    clipped = np.clip(image, 0.0, 1.0)
    if dtype in (np.uint8, np.uint16):
        scaled = clipped * np.float32(np.iinfo(dtype).max)
        return np.rint(scaled, out=scaled).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        return clipped.astype(dtype, copy=False)
    raise TypeError(f'unsupported pixel type {dtype} (uint8, uint16 or float)')
