"""Backend and IR names: string enums with MMDeploy's members, accepted wherever a string is.

A member *is* its string (``Backend.ONNXRUNTIME == 'onnxruntime'``), so records and contexts
compare names by value whichever form they were given in. ``'default'`` is the wildcard.

Names are checked where they are given (registration, context, checker): a misspelled backend
would otherwise select nothing and leave its rewrite a silent no-op.
"""
import difflib
from enum import Enum
from typing import Any, List, Type, Union

from mmdeploy_srcnn.registry import BACKENDS

from .patching import RewriterError


class UnknownNameError(RewriterError, ValueError):
    """A backend or IR name that is not known (a typo would select no rewrite at all)."""


class _Name(str, Enum):
    """A string enum whose ``str()`` and ``format()`` are its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def known(cls) -> List[str]:
        """Every name a rewrite or context may use, sorted."""
        return sorted(member.value for member in cls)


class Backend(_Name):
    """Inference-engine names: MMDeploy 1.x's list, plus this project's ``reference``.

    An engine wrapper registered in :data:`mmdeploy_srcnn.registry.BACKENDS` (the names a
    deploy config's ``backend_config.type`` may take) is a known backend name too.
    """

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
    IPU = 'ipu'
    REFERENCE = 'reference'
    DEFAULT = 'default'

    @classmethod
    def known(cls) -> List[str]:
        return sorted({member.value for member in cls} | set(BACKENDS.module_dict))


class IR(_Name):
    """Intermediate representations a model is exported to."""

    ONNX = 'onnx'
    TORCHSCRIPT = 'torchscript'
    DEFAULT = 'default'


DEFAULT = 'default'

NameLike = Union[str, Enum]


def as_name(value: Any, kind: Type[_Name], what: str) -> str:
    """``value`` (a string or a string-valued enum member) as a plain ``str`` known to ``kind``.

    Anything but a non-empty string is a :class:`RewriterError` naming ``what``; a string
    ``kind`` does not know is an :class:`UnknownNameError` naming the closest known name.
    """
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str) or not value:
        raise RewriterError(f'{what} must be a non-empty string or a Backend/IR member, '
                            f'got {value!r}')
    known = kind.known()
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ''
        raise UnknownNameError(f'{what}: unknown {kind.__name__} name {value!r}{hint} '
                               f'(known: {", ".join(known)})')
    return str(value)
