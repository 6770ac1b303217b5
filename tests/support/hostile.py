"""Hostile inputs for the image layer, generated on the fly (nothing large is kept in git).

Each function writes one file (or special file) into a folder the test owns and returns its
path. The bombs are real: valid PNGs whose zlib data inflates to every declared row, made
without ever holding the inflated data (one compressed block, repeated).
"""
import os
import struct
import zlib
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np
from skimage import data

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Colour type -> samples per pixel.
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Printed raw, this name would start a new line and turn the terminal's text red.
HOSTILE_NAME = 'evil\nerror: forged line \x1b[31mred.png'
DEV_ZERO = Path('/dev/zero')


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One chunk: length, type, payload, CRC."""
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload)))


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, idat: bytes,
              extra_chunks: bytes = b'') -> bytes:
    """A PNG from its parts: IHDR, ``extra_chunks`` (e.g. tRNS), one IDAT, IEND."""
    header = struct.pack('>IIBBBBB', width, height, bit_depth, color_type, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b'IHDR', header) + extra_chunks
            + png_chunk(b'IDAT', idat) + png_chunk(b'IEND', b''))


def raw_png(pixels: np.ndarray, color_type: int, extra_chunks: bytes = b'') -> bytes:
    """A PNG of ``pixels`` (HxW or HxWxC, uint8 or uint16) in the given colour type, every
    row unfiltered: a writer independent of the code under test."""
    height, width = pixels.shape[:2]
    rows = pixels.astype(pixels.dtype.newbyteorder('>')).view(np.uint8).reshape(height, -1)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    return png_bytes(width, height, pixels.dtype.itemsize * 8, color_type, zlib.compress(raw),
                     extra_chunks)


def _zero_rows_zlib(row_bytes: int, height: int) -> bytes:
    """A zlib stream that inflates to ``height`` all-zero rows of ``row_bytes`` (filter 0).

    A full flush ends each compressed block on a byte boundary with no reference to earlier
    data, so the block for a run of identical rows is the same every time and is repeated.
    """
    total = row_bytes * height
    rows_per_block = max(1, (16 << 20) // row_bytes)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(row_bytes * rows_per_block))
    block += compressor.flush(zlib.Z_FULL_FLUSH)
    full_blocks, rest_rows = divmod(height, rows_per_block)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = tail.compress(bytes(row_bytes * rest_rows)) + tail.flush(zlib.Z_FINISH)
    adler = ((total % 65521) << 16) | 1  # Adler-32 of `total` zero bytes
    return b'\x78\xda' + block * full_blocks + last + struct.pack('>I', adler)


def png_bomb(path: Path, width: int, height: int, bit_depth: int = 8,
             color_type: int = 2) -> Path:
    """A valid, black PNG that declares ``width`` x ``height`` pixels in a small file."""
    row_bytes = 1 + width * _PNG_SAMPLES[color_type] * bit_depth // 8
    path.write_bytes(png_bytes(width, height, bit_depth, color_type,
                               _zero_rows_zlib(row_bytes, height)))
    return path


def photo(size: int = 64) -> np.ndarray:
    """An RGB test photo (uint8)."""
    return np.ascontiguousarray(data.astronaut()[:size, :size])


def jpeg_cut_with_end_marker(path: Path) -> Path:
    """The first half of a JPEG followed by an end-of-image marker: every marker the file
    needs is there, but half the image data is missing."""
    encoded = cv2.imencode('.jpg', photo(256)[..., ::-1])[1].tobytes()
    path.write_bytes(encoded[:len(encoded) // 2] + b'\xff\xd9')
    return path


def png_bad_crc(path: Path) -> Path:
    """A PNG whose image data is intact but whose IDAT CRC has one flipped bit."""
    encoded = bytearray(raw_png(photo(), 2))
    idat_end = len(encoded) - 12  # the IEND chunk is the last 12 bytes
    encoded[idat_end - 1] ^= 0x10
    path.write_bytes(bytes(encoded))
    return path


def png_bad_zlib(path: Path) -> Path:
    """A PNG whose zlib stream stops halfway, with a correct CRC: only inflating finds it."""
    pixels = photo()
    rows = np.hstack([np.zeros((64, 1), np.uint8), pixels.reshape(64, -1)]).tobytes()
    stream = zlib.compress(rows)
    path.write_bytes(png_bytes(64, 64, 8, 2, stream[:len(stream) // 2]))
    return path


def gray_alpha_png(path: Path, dtype: type = np.uint8) -> np.ndarray:
    """A gray + alpha PNG (colour type 4) of a gradient with varying alpha; returns its
    pixels as ``HxWx2``."""
    top = np.iinfo(dtype).max
    gray = np.linspace(0, top, 30 * 40).reshape(30, 40).astype(dtype)
    alpha = np.linspace(top, 0, 30 * 40).reshape(40, 30).T.astype(dtype)
    pixels = np.dstack([gray, alpha])
    path.write_bytes(raw_png(pixels, 4))
    return pixels


def _tiff(entries: List[Tuple[int, int, Optional[int]]], payload: bytes, endian: str,
          big: bool) -> bytes:
    """A TIFF (BigTIFF if ``big``) with one image directory and ``payload`` after it.

    ``entries`` are ``(tag, type, value)`` with one value each, in ascending tag order; a value
    of None stands for the payload's offset.
    """
    order = b'II' if endian == '<' else b'MM'
    if big:
        header = order + struct.pack(endian + 'HHHQ', 43, 8, 0, 16)
    else:
        header = order + struct.pack(endian + 'HI', 42, 8)
    count_format, entry_format, field_size = ('Q', 'HHQ', 8) if big else ('H', 'HHI', 4)
    entry_size = struct.calcsize(endian + entry_format) + field_size
    payload_offset = (len(header) + struct.calcsize(endian + count_format)
                      + len(entries) * entry_size + field_size)
    directory = struct.pack(endian + count_format, len(entries))
    for tag, kind, value in entries:
        field = struct.pack(endian + {3: 'H', 4: 'I', 16: 'Q'}[kind],
                            payload_offset if value is None else value)
        directory += struct.pack(endian + entry_format, tag, kind, 1)
        directory += field.ljust(field_size, b'\0')
    return header + directory + bytes(field_size) + payload


def gray_tiff(pixels: np.ndarray, endian: str = '<', big: bool = False) -> bytes:
    """An uncompressed 8-bit gray TIFF in either byte order, classic or BigTIFF."""
    height, width = pixels.shape
    entries = [(256, 3, width), (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 16 if big else 4, None), (277, 3, 1), (278, 3, height),
               (279, 4, pixels.size)]
    return _tiff(entries, pixels.astype(np.uint8).tobytes(), endian, big)


def tiff_tile_bomb(path: Path, side: int = 16, tile: int = 4096) -> Path:
    """A ``side`` x ``side`` gray TIFF stored as one ``tile`` x ``tile`` deflated tile: the
    decoder allocates a whole tile, however small the image."""
    data = zlib.compress(bytes(tile * tile))
    entries = [(256, 3, side), (257, 3, side), (258, 3, 8), (259, 3, 8), (262, 3, 1),
               (277, 3, 1), (322, 4, tile), (323, 4, tile), (324, 4, None), (325, 4, len(data))]
    path.write_bytes(_tiff(entries, data, '<', False))
    return path


def fifo(path: Path) -> Path:
    """A named pipe with no writer: opening it for reading blocks forever."""
    os.mkfifo(path)
    return path


def sparse_file(path: Path, size: int) -> Path:
    """A PNG signature followed by ``size`` bytes of nothing (sparse: no disk is used)."""
    with open(path, 'wb') as file:
        file.write(PNG_SIGNATURE)
        file.truncate(size)
    return path
