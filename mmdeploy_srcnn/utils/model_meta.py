"""The I/O contract of an exported super-resolution model: the one place that knows it.

Export writes a :class:`ModelConvention` into the ``.onnx`` ``metadata_props``; verification,
the profiler, the benchmarks, the tools and the torch-free app read it back from the file and
let it build the model's inputs (:meth:`ModelConvention.model_inputs`) and read its output
(:meth:`ModelConvention.rgb_output`). Nobody else spells out input names, the factor layout,
the colour order or the value range.

Metadata comes from a file, so it is data: every value read back is checked against sane
bounds and a bad one is a ``ValueError`` naming the key. A model without these fields
(exported by another tool) gets the defaults, which describe what this project exports.
"""
import dataclasses
import math
import numbers
import os
import re
from typing import Dict, Mapping, Tuple, Union

import numpy as np

from mmdeploy_srcnn.utils.scale import parse_decimal, parse_scale

PathLike = Union[str, os.PathLike]
FACTOR_FORMATS = {
    'hw': 'a float32 tensor [scale_h, scale_w]',
    'nchw': 'a float32 tensor [1, 1, scale_h, scale_w] (the MMDeploy tutorial layout)',
}
COLOR_ORDERS = ('RGB', 'BGR')
METADATA_PREFIX = 'mmdeploy_srcnn.'
MAX_HALO = 64
"""Largest tile overlap a model may ask for (output pixels per side); SRCNN 9-1-5 needs 6."""
MAX_ABS_VALUE = 65535.0
"""Largest magnitude of a value-range bound (16-bit pixel values)."""
MIN_SPAN = 1e-3
"""Smallest ``high - low`` of a value range: a model whose white is within 0.001 of its black is
not an image model, and dividing by the span would blow its noise up to full scale."""
MAX_MAGNITUDE_PER_SPAN = 256.0
"""The span must be at least 1/256 of the range's largest magnitude: float32's 24-bit mantissa
then still resolves 1/65536 of the span (a 16-bit step) there. ``(65000, 65000.01)`` is refused:
its outputs would be quantised to halves of the range."""
_NAME_MAX_LENGTH = 256
_HALO_TEXT = re.compile(r'[0-9]{1,3}')


@dataclasses.dataclass(frozen=True)
class ModelConvention:
    """How to feed an exported super-resolution model and read its output.

    Attributes:
        image_input, factor_input, output: graph input and output names.
        factor_format: ``'hw'`` or ``'nchw'`` (see :data:`FACTOR_FORMATS`).
        color_order: channel order of the image input and output.
        value_range: what the model calls black and white (``(0, 1)``, ``(0, 255)`` ...).
        halo: output pixels, per side, that one output pixel depends on after the resize: how
            much tiles must overlap.
        input_halo: input pixels, per side, that a pixel depends on *before* the resize (0
            when the resize comes first, as in SRCNN): tiles read that much more input.
    """

    image_input: str = 'input'
    factor_input: str = 'factor'
    output: str = 'output'
    factor_format: str = 'hw'
    color_order: str = 'RGB'
    value_range: Tuple[float, float] = (0.0, 1.0)
    halo: int = 6
    input_halo: int = 0

    def __post_init__(self) -> None:
        for key in ('image_input', 'factor_input', 'output'):
            name = getattr(self, key)
            if not (isinstance(name, str) and 0 < len(name) <= _NAME_MAX_LENGTH
                    and name.isprintable()):
                raise ValueError(f'{key} must be a printable name of 1..{_NAME_MAX_LENGTH} '
                                 f'characters, got {name!r}')
        if self.image_input == self.factor_input:
            raise ValueError(f'image_input and factor_input must differ, both are '
                             f'{self.image_input!r}')
        if self.factor_format not in FACTOR_FORMATS:
            raise ValueError(f'factor_format must be one of {", ".join(FACTOR_FORMATS)}, '
                             f'got {self.factor_format!r}')
        if self.color_order not in COLOR_ORDERS:
            raise ValueError(f'color_order must be one of {", ".join(COLOR_ORDERS)}, '
                             f'got {self.color_order!r}')
        for key in ('halo', 'input_halo'):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_HALO:
                raise ValueError(f'{key} must be an int in 0..{MAX_HALO}, got {value!r}')
        _check_value_range(self.value_range)

    # ---- feeding the model ---------------------------------------------------------------

    def factor_array(self, scale: object) -> np.ndarray:
        """The factor input for ``scale`` (a number, ``(h, w)`` or ``'2x3'``), float32."""
        scale_h, scale_w = parse_scale(scale)
        prefix = [] if self.factor_format == 'hw' else [1.0, 1.0]
        return np.array([*prefix, scale_h, scale_w], dtype=np.float32)

    def model_inputs(self, rgb: np.ndarray, scale: object) -> Dict[str, np.ndarray]:
        """Named model inputs for an N x 3 x H x W RGB batch in [0, 1] at ``scale``."""
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValueError(f'expected an N x 3 x H x W RGB batch, got shape {rgb.shape}')
        pixels = rgb[:, ::-1] if self.color_order == 'BGR' else rgb
        low, high = self.value_range
        if (low, high) != (0.0, 1.0):
            pixels = pixels * np.float32(high - low) + np.float32(low)
        return {self.image_input: np.ascontiguousarray(pixels, dtype=np.float32),
                self.factor_input: self.factor_array(scale)}

    def rgb_output(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's image output as an RGB batch on the [0, 1] scale (not clipped)."""
        if self.output not in outputs:
            raise ValueError(f'the model gave no output {self.output!r} '
                             f'(it gave {sorted(outputs)})')
        pixels = outputs[self.output]
        low, high = self.value_range
        if (low, high) != (0.0, 1.0):
            pixels = (pixels - np.float32(low)) / np.float32(high - low)
        return pixels[:, ::-1] if self.color_order == 'BGR' else pixels

    # ---- metadata ------------------------------------------------------------------------

    def to_metadata(self) -> Dict[str, str]:
        """Serialise as ``metadata_props`` entries (all strings, prefixed)."""
        fields = dataclasses.asdict(self)
        fields['value_range'] = ','.join(repr(float(v)) for v in self.value_range)
        return {METADATA_PREFIX + key: str(value) for key, value in fields.items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> 'ModelConvention':
        """Read the convention back; missing fields take the defaults, bad ones raise
        ``ValueError`` naming the key."""
        names = {field.name for field in dataclasses.fields(cls)}
        kwargs: Dict[str, object] = {key[len(METADATA_PREFIX):]: value
                                     for key, value in metadata.items()
                                     if key.startswith(METADATA_PREFIX)
                                     and key[len(METADATA_PREFIX):] in names}
        if 'value_range' in kwargs:
            text = str(kwargs['value_range'])
            try:
                low, high = (parse_decimal(part) for part in text.split(','))
            except ValueError:
                raise ValueError(f'bad value_range in model metadata: {text!r} (expected '
                                 'LOW,HIGH in ASCII decimals)') from None
            kwargs['value_range'] = (low, high)
        for key in ('halo', 'input_halo'):
            if key in kwargs:
                text = str(kwargs[key])
                if not _HALO_TEXT.fullmatch(text):
                    raise ValueError(f'bad {key} in model metadata: {text!r} (expected 1 to 3 '
                                     'ASCII digits)')
                kwargs[key] = int(text)
        try:
            return cls(**kwargs)
        except ValueError as err:
            raise ValueError(f'bad model metadata: {err}') from None

    @classmethod
    def missing_fields(cls, metadata: Mapping[str, str]) -> Tuple[str, ...]:
        """The fields ``metadata`` does not record, which :meth:`from_metadata` defaults."""
        return tuple(field.name for field in dataclasses.fields(cls)
                     if METADATA_PREFIX + field.name not in metadata)

    @classmethod
    def from_onnx(cls, onnx_path: PathLike) -> 'ModelConvention':
        """The convention recorded in an ``.onnx`` file."""
        return cls.from_metadata(read_onnx_metadata(onnx_path))


def _check_value_range(value_range: object) -> None:
    """Refuse a value range that float32, in which the model is fed and read, cannot use.

    Checked on the float32 values: ``(0, 1e-300)`` passes in float64 but is ``(0, 0)`` in
    float32, a zero span that turns every output into a division by zero.
    """
    bounds = tuple(value_range) if isinstance(value_range, (tuple, list)) else ()
    if len(bounds) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                   for v in bounds):
        raise ValueError(f'value_range must be two numbers (low, high), got {value_range!r}')
    with np.errstate(over='ignore', invalid='ignore'):  # too large -> inf, refused below
        low, high = (np.float32(v) for v in bounds)
        span = np.float32(high - low)
    if not all(math.isfinite(v) and abs(v) <= MAX_ABS_VALUE for v in (low, high)):
        raise ValueError(f'value_range must be finite with |values| <= {MAX_ABS_VALUE:g}, '
                         f'got {value_range!r}')
    if not (span >= MIN_SPAN and span * MAX_MAGNITUDE_PER_SPAN >= max(abs(low), abs(high))):
        raise ValueError(f'value_range must have low < high with high - low >= {MIN_SPAN:g} '
                         f'and >= 1/{MAX_MAGNITUDE_PER_SPAN:g} of the largest |value| (in '
                         f'float32), got {value_range!r}')


def read_onnx_metadata(onnx_path: PathLike) -> Dict[str, str]:
    """``metadata_props`` of an ``.onnx`` file (its external data, if any, is not read)."""
    import onnx  # imported on use: importing onnx costs about a second

    proto = onnx.load(str(onnx_path), load_external_data=False)
    return {prop.key: prop.value for prop in proto.metadata_props}
