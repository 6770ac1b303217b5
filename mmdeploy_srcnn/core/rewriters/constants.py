"""Backend and IR names: string enums with MMDeploy's members, accepted wherever a string is.

A member *is* its string (``Backend.ONNXRUNTIME == 'onnxruntime'``), so records and contexts
compare names by value whichever form they were given in. ``'default'`` is the wildcard.
"""
from enum import Enum
from typing import Any, Union

from .patching import RewriterError


class _Name(str, Enum):
    """A string enum whose ``str()`` and ``format()`` are its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Backend(_Name):
    """Inference-engine names (MMDeploy's list, plus this project's ``reference``)."""

    PYTORCH = 'pytorch'
    TENSORRT = 'tensorrt'
    ONNXRUNTIME = 'onnxruntime'
    PPLNN = 'pplnn'
    NCNN = 'ncnn'
    SNPE = 'snpe'
    OPENVINO = 'openvino'
    SDK = 'sdk'
    TORCHSCRIPT = 'torchscript'
    RKNN = 'rknn'
    ASCEND = 'ascend'
    COREML = 'coreml'
    TVM = 'tvm'
    VACC = 'vacc'
    REFERENCE = 'reference'
    DEFAULT = 'default'


class IR(_Name):
    """Intermediate representations a model is exported to."""

    ONNX = 'onnx'
    TORCHSCRIPT = 'torchscript'
    DEFAULT = 'default'


DEFAULT = 'default'

NameLike = Union[str, Enum]


def as_name(value: Any, what: str) -> str:
    """``value`` (a non-empty string or a string-valued enum member) as a plain ``str``.

    Backend names are open (a user may register for ``'my_engine'``), so any non-empty string
    is accepted; anything else is an error naming ``what``.
    """
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str) or not value:
        raise RewriterError(f'{what} must be a non-empty string or a Backend/IR member, '
                            f'got {value!r}')
    return str(value)
