"""The contract between an exported ``.onnx`` and the apps that run it.

Export writes these fields into the model's ``metadata_props``; the torch-free app reads them,
so a user never has to know how the file was made. A model without them (exported by another
tool) gets the defaults, which describe what this project exports.
"""
import dataclasses
from typing import Dict, Mapping, Tuple

FACTOR_FORMATS = {
    'hw': 'a float32 tensor [scale_h, scale_w]',
    'nchw': 'a float32 tensor [1, 1, scale_h, scale_w] (the MMDeploy tutorial layout)',
}
COLOR_ORDERS = ('RGB', 'BGR')
_PREFIX = 'mmdeploy_srcnn.'


@dataclasses.dataclass(frozen=True)
class ModelConvention:
    """How to feed an exported super-resolution model and read its output."""

    image_input: str = 'input'
    factor_input: str = 'factor'
    output: str = 'output'
    factor_format: str = 'hw'
    color_order: str = 'RGB'
    value_range: Tuple[float, float] = (0.0, 1.0)
    # Output pixels, per side, that one output pixel depends on after the resize: how much
    # tiles must overlap. 6 is SRCNN 9-1-5 (9 // 2 + 1 // 2 + 5 // 2).
    halo: int = 6

    def __post_init__(self) -> None:
        if self.factor_format not in FACTOR_FORMATS:
            raise ValueError(f'factor_format must be one of {", ".join(FACTOR_FORMATS)}, '
                             f'got {self.factor_format!r}')
        if self.color_order not in COLOR_ORDERS:
            raise ValueError(f'color_order must be one of {", ".join(COLOR_ORDERS)}, '
                             f'got {self.color_order!r}')
        if not isinstance(self.halo, int) or self.halo < 0:
            raise ValueError(f'halo must be an int >= 0, got {self.halo!r}')
        low, high = self.value_range
        if not low < high:
            raise ValueError(f'value_range must be (low, high) with low < high, '
                             f'got {self.value_range!r}')

    def factor_shape(self) -> Tuple[int, ...]:
        """Shape of the factor tensor the model expects."""
        return (2,) if self.factor_format == 'hw' else (4,)

    def to_metadata(self) -> Dict[str, str]:
        """Serialise as ``metadata_props`` entries (all strings, prefixed)."""
        fields = dataclasses.asdict(self)
        fields['value_range'] = ','.join(repr(float(v)) for v in self.value_range)
        return {_PREFIX + key: str(value) for key, value in fields.items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> 'ModelConvention':
        """Read the convention back; missing fields take the defaults."""
        values = {key[len(_PREFIX):]: value for key, value in metadata.items()
                  if key.startswith(_PREFIX)}
        fields = {field.name for field in dataclasses.fields(cls)}
        kwargs = {key: value for key, value in values.items() if key in fields}
        if 'value_range' in kwargs:
            try:
                low, high = (float(part) for part in kwargs['value_range'].split(','))
            except ValueError as err:
                raise ValueError(f'bad value_range in model metadata: '
                                 f'{kwargs["value_range"]!r}') from err
            kwargs['value_range'] = (low, high)
        if 'halo' in kwargs:
            try:
                kwargs['halo'] = int(kwargs['halo'])
            except ValueError as err:
                raise ValueError(f'bad halo in model metadata: {kwargs["halo"]!r}') from err
        return cls(**kwargs)
