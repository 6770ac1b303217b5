"""Upscale any image by any factor with one exported ``.onnx`` (no torch).

The model takes an RGB float batch and the factor as graph inputs (see
:class:`~mmdeploy_srcnn.utils.model_meta.ModelConvention`, read from the file's metadata). This
module adapts real images to it:

- 8-bit and 16-bit images come back in their own bit depth (clipped, rounded to nearest);
  float images are taken as [0, 1] and come back as float32.
- Grayscale stays grayscale: the gray channel is fed as R = G = B, and the output is the BT.601
  luma of the model's RGB (the weights of the Y channel the evaluation uses).
- Alpha is not the model's business: it is upscaled separately with bicubic on the same sample
  grid as the model's Resize (:func:`resize_bicubic`) and put back.
- The factor is a number or ``(height, width)``, validated and cast to float32 before use, and
  the output size is checked against ``max_output_pixels`` before anything runs.
"""
import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from mmdeploy_srcnn.backends import BackendError, build_backend
from mmdeploy_srcnn.backends.base import BackendTimeout
from mmdeploy_srcnn.backends.model_file import inspect_model_file
from mmdeploy_srcnn.utils.image import from_float, to_float
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import ENGINE_PRECISIONS
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale
from mmdeploy_srcnn.utils.sizes import resized_length, unenlarged_sides

from .precision import AUTO, resolve_precision
from .tiling import DEFAULT_TILE, MIN_TILE, TilingError, plan_tiles, upscale_tiled

Scale = Union[float, Sequence[float]]
Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each tile of an image."""
DEFAULT_MAX_OUTPUT_PIXELS = 200_000_000
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601 R, G, B
_PIXEL_TYPES = (np.uint8, np.uint16, np.float32, np.float64)
_BAND_PIXELS = 1 << 20  # output pixels per band of resize_bicubic


class UpscaleError(ValueError):
    """A request the upscaler refuses: bad scale, output too large, unsupported image array."""


def _scale_pair(scale: Scale) -> Tuple[float, float]:
    try:
        return parse_scale(scale)
    except ValueError as err:
        raise UpscaleError(str(err)) from None


def output_shape(image_hw: Sequence[int], scale: Scale) -> Tuple[int, int]:
    """Output ``(height, width)`` under the model's size rule: floor(in * scale) in float32."""
    scale_h, scale_w = _scale_pair(scale)
    try:
        return resized_length(image_hw[0], scale_h), resized_length(image_hw[1], scale_w)
    except ValueError as err:  # the size overflows float32
        raise UpscaleError(str(err)) from None


def resize_bicubic(image: np.ndarray, scale: Scale,
                   out: Optional[np.ndarray] = None) -> np.ndarray:
    """Bicubic upscaling on exactly the model's Resize grid (any channels, dtype kept).

    ``cv2.resize`` derives its grid from the rounded output size, which drifts up to one
    output pixel from ONNX's ``(j + 0.5) / s - 0.5`` when ``in * s`` is not an integer; an
    affine warp with that mapping (cubic a = -0.75, replicated border = clamped taps) agrees
    with ONNX Runtime's Resize within 3e-6. Used for alpha and for ``--compare``. Computed in
    bands of output rows, so the float intermediate stays small; ``out`` (output size, any
    dtype) receives the result when given.
    """
    scale_h, scale_w = _scale_pair(scale)
    out_h, out_w = output_shape(image.shape[:2], (scale_h, scale_w))
    if out is None:
        out = np.empty((out_h, out_w) + image.shape[2:], image.dtype)
    source = to_float(image)
    band = max(1, _BAND_PIXELS // max(out_w, 1))
    for top in range(0, out_h, band):
        rows = min(band, out_h - top)
        dst_to_src = np.array([[1 / scale_w, 0, 0.5 / scale_w - 0.5],
                               [0, 1 / scale_h, (top + 0.5) / scale_h - 0.5]])
        resized = cv2.warpAffine(source, dst_to_src, (out_w, rows),
                                 flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
        out[top:top + rows] = from_float(resized.reshape(out[top:top + rows].shape), out.dtype)
    return out


def _split_alpha(image: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(color, alpha)``: color is HxW (gray) or HxWx3 (RGB); alpha HxW or None."""
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 2, 3, 4):
        raise UpscaleError(f'expected an HxW, HxWx1, HxWx2, HxWx3 or HxWx4 image, '
                           f'got shape {image.shape}')
    if image.ndim == 2:
        return image, None
    color = image[..., 0] if channels <= 2 else image[..., :3]
    return color, (image[..., -1] if channels in (2, 4) else None)


class Upscaler:
    """Upscales images with an SRCNN ``.onnx`` whose factor is a graph input.

    Args:
        onnx_path: the exported model.
        backend: a registered backend type (``'onnxruntime'``, ``'openvino'`` ...).
        tile: produce about ``tile`` x ``tile`` output pixels per model run, to bound memory
            whatever the scale (``None`` or ``0``: the whole image at once). The result equals
            the untiled one within float rounding; see :mod:`mmdeploy_srcnn.app.tiling`.
        threads: backend threads; ``None`` lets the backend choose.
        max_output_pixels: refuse outputs larger than this, before running.
        precision: ``'auto'`` (the fastest precision whose recorded quality loss is within
            0.02 dB on this CPU and engine, see :mod:`.precision`), or ``'f32'``, ``'bf16'``,
            ``'f16'``, ``'int8'`` (the ``end2end_int8.onnx`` next to the model).
        allow_external_data: let the model read weights from other files in its folder
            (refused by default: see :mod:`mmdeploy_srcnn.backends.model_file`).
        for_scale: the scale the images will be upscaled by, when known: ``auto`` picks a
            reduced precision only for scales whose quality loss was measured (1.5-4).

    ``self.precision`` and ``self.precision_reason`` say what ``auto`` chose and why
    (``self.precision_warnings``: what it passed over that the user should hear about);
    ``self.assumed_fields``, which parts of the I/O convention the model does not record (they
    take SRCNN's values: RGB in [0, 1], factor ``[h, w]``, halo 6).
    """

    def __init__(self, onnx_path: Union[str, os.PathLike], backend: str = 'onnxruntime',
                 tile: Optional[int] = DEFAULT_TILE, threads: Optional[int] = None,
                 max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
                 precision: str = AUTO, allow_external_data: bool = False,
                 for_scale: Optional[Scale] = None) -> None:
        if tile is not None and tile != 0 and tile < MIN_TILE:
            raise ValueError(f'tile must be 0 or None (whole image) or at least {MIN_TILE} '
                             f'pixels, got {tile}')
        if max_output_pixels < 1:
            raise ValueError(f'max_output_pixels must be >= 1, got {max_output_pixels}')
        self.tile = tile or None
        self.max_output_pixels = max_output_pixels
        path = Path(onnx_path)
        if not path.is_file():
            raise BackendError(f'{path}: ONNX model file not found')
        metadata = inspect_model_file(path, allow_external_data)  # the backend's own checks
        resolved = resolve_precision(path, metadata, backend, precision,
                                     scale=None if for_scale is None else _scale_pair(for_scale))
        self.precision, self.precision_reason = resolved.precision, resolved.reason
        self.precision_warnings = resolved.warnings
        config = {'type': backend, 'allow_external_data': allow_external_data}
        if backend in ENGINE_PRECISIONS:
            config['precision'] = resolved.precision
        if threads is not None:
            config['threads'] = threads
        self._backend = build_backend(config, resolved.path)
        try:
            self.convention = ModelConvention.from_metadata(metadata)
            run_convention = ModelConvention.from_metadata(self._backend.metadata)
        except ValueError as err:
            raise BackendError(f'{resolved.path}: {err}') from None
        if run_convention != self.convention:  # the int8 file must be fed as its float model
            differences = '; '.join(
                f'{field.name} {getattr(run_convention, field.name)!r} there, '
                f'{getattr(self.convention, field.name)!r} here'
                for field in dataclasses.fields(ModelConvention)
                if getattr(run_convention, field.name) != getattr(self.convention, field.name))
            raise BackendError(f'{resolved.path}: not fed as {path.name} is ({differences}); '
                               'deploy again to rewrite it')
        self.assumed_fields = ModelConvention.missing_fields(metadata)
        expected_inputs = {self.convention.image_input, self.convention.factor_input}
        if (set(self._backend.input_names) != expected_inputs
                or self.convention.output not in self._backend.output_names):
            raise BackendError(
                f'{resolved.path}: not a dynamic-factor model: it takes '
                f'{self._backend.input_names} and gives {self._backend.output_names}, expected '
                f'inputs {sorted(expected_inputs)} and output {self.convention.output!r}')

    def check_output_size(self, image_hw: Sequence[int], scale: Scale) -> Tuple[int, int]:
        """The output ``(height, width)``; raises :class:`UpscaleError` if empty or too large."""
        out_h, out_w = output_shape(image_hw, scale)
        size = f'{image_hw[1]}x{image_hw[0]} (width x height) at scale {format_scale(scale)}'
        if out_h < 1 or out_w < 1:
            raise UpscaleError(f'{size} gives an empty image')
        if out_h * out_w > self.max_output_pixels:
            raise UpscaleError(f'{size} gives {out_w}x{out_h}, {out_h * out_w / 1e6:.3g} '
                               f'megapixels, over the limit of {self.max_output_pixels / 1e6:g}')
        unchanged = unenlarged_sides(image_hw, _scale_pair(scale))
        if unchanged:
            sides = ' and the '.join(f'{("height", "width")[axis]} ({image_hw[axis]} -> '
                                     f'{image_hw[axis]})' for axis in unchanged)
            shortest = min(image_hw[axis] for axis in unchanged)
            raise UpscaleError(
                f'{size} adds no pixel to the {sides}: engines copy such a side instead of '
                "resampling it, so the result would not be the model's; use a scale of at "
                f'least {(shortest + 1) / shortest:.6g} for this image, or 1')
        return out_h, out_w

    def tile_count(self, image_hw: Sequence[int], scale: Scale) -> int:
        """How many model runs :meth:`upscale` makes for an image of this size."""
        scale_h, scale_w = _scale_pair(scale)
        try:
            rows, cols = plan_tiles(image_hw, (scale_h, scale_w), self.tile,
                                    self.convention.halo, self.convention.input_halo)
        except TilingError as err:
            raise UpscaleError(str(err)) from None
        return len(rows) * len(cols)

    def upscale(self, image: np.ndarray, scale: Scale, progress: Optional[Progress] = None,
                timeout: Optional[float] = None) -> np.ndarray:
        """Upscale an HxW, HxWx1, HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA) image.

        ``scale`` is a number or ``(height, width)``. The result has the input's layout and
        dtype and the size :func:`output_shape` gives. ``progress(done, total)`` is called
        after each tile. ``timeout``: seconds for all model runs of this image together
        (:class:`~mmdeploy_srcnn.backends.base.BackendTimeout` when over).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if image.dtype not in _PIXEL_TYPES:
            raise UpscaleError(f'unsupported pixel type {image.dtype} '
                               '(uint8, uint16, float32 or float64)')
        scale_hw = _scale_pair(scale)
        color, alpha = _split_alpha(image)
        out_h, out_w = self.check_output_size(image.shape[:2], scale_hw)
        if np.issubdtype(image.dtype, np.floating):
            bad = image.size - int(np.count_nonzero(np.isfinite(image)))
            if bad:
                raise UpscaleError(f'the image has {bad} non-finite value(s) (NaN or inf); '
                                   'float images must hold numbers in [0, 1]')
        out_dtype = np.float32 if np.issubdtype(image.dtype, np.floating) else image.dtype
        out = np.empty((out_h, out_w) + image.shape[2:], out_dtype)
        channels = 1 if image.ndim == 2 else image.shape[2]
        color_out = out if image.ndim == 2 else out[..., :3] if channels >= 3 else out[..., 0]

        def process(crop: np.ndarray) -> np.ndarray:
            rgb = to_float(crop)
            if crop.ndim == 2:
                rgb = np.repeat(rgb[..., None], 3, axis=2)
            remaining = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
            result = self._run_model(rgb, scale_hw, remaining)
            if crop.ndim == 2:
                result = result @ _LUMA_WEIGHTS
            return from_float(result, out_dtype)

        try:
            upscale_tiled(process, color, scale_hw, self.tile, self.convention.halo, progress,
                          out=color_out, input_halo=self.convention.input_halo)
        except TilingError as err:
            raise UpscaleError(str(err)) from None
        except BackendTimeout:
            raise BackendTimeout(f'{self._backend.onnx_path.name}: the model took longer than '
                                 f'the timeout of {timeout:g} s for this image and was '
                                 'stopped') from None
        if alpha is not None:
            resize_bicubic(alpha, scale_hw, out=out[..., -1])
        return out

    def _run_model(self, rgb: np.ndarray, scale_hw: Tuple[float, float],
                   timeout: Optional[float]) -> np.ndarray:
        """HxWx3 RGB in [0, 1] -> upscaled HxWx3 RGB in [0, 1] (unclipped), one model run."""
        inputs = self.convention.model_inputs(rgb.transpose(2, 0, 1)[None], scale_hw)
        try:
            result = self.convention.rgb_output(self._backend.run(inputs, timeout))
        except ValueError as err:  # the model has no output of the recorded name
            raise BackendError(f'{self._backend.onnx_path}: {err}') from None
        bad = result.size - int(np.count_nonzero(np.isfinite(result)))
        if bad:  # converting them to pixels would write black or white without a word
            raise BackendError(f'{self._backend.onnx_path}: the model returned {bad} non-finite '
                               'value(s) (NaN or inf); no image written')
        expected = (1, 3) + output_shape(rgb.shape[:2], scale_hw)
        if result.shape != expected:
            raise BackendError(f'{self._backend.onnx_path}: the model returned shape '
                               f'{result.shape} for a {rgb.shape[1]}x{rgb.shape[0]} input at '
                               f'scale {scale_hw}, expected {expected}')
        return result[0].transpose(1, 2, 0)
