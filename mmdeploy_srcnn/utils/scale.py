"""Upscale factors as users write them: ``2``, ``2.5``, ``(2, 3)`` or ``'2x3'`` (height x width).

One parser for configs, the deploy tool and the app; numbers in text are ASCII decimals only.
Values are returned as the float32 numbers the model's ``factor`` input will hold, so every size
computed from them follows the model.
"""
import math
import re
from typing import Any, Sequence, Tuple

import numpy as np

# A plain decimal number in ASCII digits: no '_' separators ('2_0' is not 20), no 'inf'/'nan'
# spelled out, and no other script's digits (Python's float() reads Arabic-Indic '٣' as 3).
_DECIMAL = re.compile(r'[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?')


def parse_decimal(text: str) -> float:
    """``text`` as a float if it is a plain ASCII decimal number (surrounding spaces allowed),
    else ``ValueError``. Scales and the numbers of model metadata are read this way."""
    if not (isinstance(text, str) and _DECIMAL.fullmatch(text.strip())):
        raise ValueError(f'{text!r} is not a plain decimal number')
    return float(text)


def parse_scale(value: Any) -> Tuple[float, float]:
    """``(scale_h, scale_w)`` from a number, an ``(h, w)`` pair or a ``'2.5'``/``'2x3'`` string.

    Raises ``ValueError`` (naming the value) unless both are finite and > 0 in float32.
    """
    if isinstance(value, str):
        try:
            numbers = [parse_decimal(part) for part in value.lower().split('x')]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2):
            if value.strip().lower().lstrip('+-') in ('inf', 'infinity', 'nan'):
                raise ValueError(f'scale {value!r} must be finite and > 0')
            raise ValueError(f'scale {value!r} is not a number or HEIGHTxWIDTH '
                             '(e.g. 2, 2.5, 2x3)')
        pair: Sequence[Any] = numbers * 2 if len(numbers) == 1 else numbers
    elif isinstance(value, (tuple, list, np.ndarray)):
        pair = list(value)
    else:
        pair = [value, value]
    if len(pair) != 2 or any(isinstance(v, (bool, str)) for v in pair):
        raise ValueError(f'scale {value!r} must be a number or a (height, width) pair')
    scales = []
    for number in pair:
        try:
            with np.errstate(over='ignore'):  # too large for float32 -> inf, refused below
                as_float32 = float(np.float32(float(number)))
        except (TypeError, ValueError):
            raise ValueError(f'scale {value!r} must be a number or a (height, width) pair') \
                from None
        if not (math.isfinite(as_float32) and as_float32 > 0):
            raise ValueError(f'scale {value!r} must be finite and > 0')
        scales.append(as_float32)
    return scales[0], scales[1]


def format_scale(value: Any) -> str:
    """``'2.5'`` for a uniform scale, ``'2x3'`` (height x width) otherwise."""
    scale_h, scale_w = parse_scale(value)
    return f'{scale_h:g}' if scale_h == scale_w else f'{scale_h:g}x{scale_w:g}'
