"""Which model file and engine precision the app runs: ``--precision auto`` resolved.

``auto`` takes :func:`~mmdeploy_srcnn.utils.precision.choose_precision`'s pick for this CPU
and engine, from the quality table recorded in the model's metadata; int8 needs its own file
(``end2end_int8.onnx`` next to the float one), so a missing one takes int8 out of the running
rather than failing. An explicit precision is taken as asked, or refused with a reason.
"""
import dataclasses
from pathlib import Path
from typing import Mapping, Optional, Tuple

from mmdeploy_srcnn.backends import BackendError
from mmdeploy_srcnn.backends.base import first_line
from mmdeploy_srcnn.utils.fileio import file_sha256
from mmdeploy_srcnn.utils.model_meta import read_onnx_metadata
from mmdeploy_srcnn.utils.precision import (ENGINE_PRECISIONS, FLOAT_MODEL_SHA256_KEY,
                                            PRECISION_KEY, QUALITY_SCALES, QUALITY_TABLE_KEY,
                                            CpuFeatures, QualityTable, QualityTableError,
                                            check_precision, choose_precision, fast_precisions,
                                            int8_model_path, parse_quality_table, read_cpu_features)
from mmdeploy_srcnn.utils.scale import format_scale

AUTO = 'auto'
CHOICES = (AUTO, 'f32', 'bf16', 'f16', 'int8')


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The file to load, the precision to run it at, and why (for the user)."""

    path: Path
    precision: str
    reason: str
    warnings: Tuple[str, ...] = ()
    """What the user should hear about even on success (an int8 file passed over)."""


def _quality_table(path: Path, metadata: Mapping[str, str]) -> Optional[QualityTable]:
    text = metadata.get(QUALITY_TABLE_KEY)
    if text is None:
        return None
    try:
        return parse_quality_table(text, f'{path} metadata')
    except QualityTableError as err:
        raise BackendError(str(err)) from None


def _without(table: Optional[QualityTable], engine: str, precision: str
             ) -> Optional[QualityTable]:
    """``table`` with no entry for ``precision`` on ``engine`` (it cannot be chosen then)."""
    if table is None:
        return None
    losses = {name: dict(rows) for name, rows in table.losses.items()}
    losses.get(engine, {}).pop(precision, None)
    return dataclasses.replace(table, losses=losses)


def resolve_precision(onnx_path: Path, metadata: Mapping[str, str], engine: str,
                      requested: str, features: Optional[CpuFeatures] = None,
                      scale: Optional[Tuple[float, float]] = None) -> Resolved:
    """The file and precision for ``requested`` (``'auto'`` or a precision) on ``engine``.

    ``scale``: the (height, width) factor the run will use, when known; ``auto`` takes a
    reduced precision only for factors within the scales its quality table measured.
    """
    if requested not in CHOICES:
        raise BackendError(f'unknown precision {requested!r} (choose from {", ".join(CHOICES)})')
    if metadata.get(PRECISION_KEY) == 'int8':  # an int8 file runs at int8, nothing else
        if requested not in (AUTO, 'int8'):
            raise BackendError(f'{onnx_path}: an int8 model cannot run at precision '
                               f'{requested!r}; give the float model')
        return Resolved(onnx_path, 'int8', 'an int8 model file')
    if requested != AUTO:
        if engine not in ENGINE_PRECISIONS and requested != 'f32':
            raise BackendError(f'--precision {requested}: {engine} runs f32 only')
        if engine in ENGINE_PRECISIONS:
            try:
                check_precision(engine, requested)
            except ValueError as err:
                raise BackendError(f'--precision {requested}: {err}') from None
        if requested == 'int8':
            return Resolved(_existing_int8(onnx_path), 'int8', 'asked for')
        return Resolved(onnx_path, requested, 'asked for')
    if engine not in ENGINE_PRECISIONS:
        return Resolved(onnx_path, 'f32', f'auto: no reduced precision known for {engine}')
    low, high = min(QUALITY_SCALES), max(QUALITY_SCALES)
    if scale is not None and not all(low <= factor <= high for factor in scale):
        return Resolved(onnx_path, 'f32', f'auto: x{format_scale(scale)} is outside the scales '
                                          f'whose quality loss was measured ({low:g}-{high:g})')
    features = features or read_cpu_features()
    table = _quality_table(onnx_path, metadata)
    skipped = []
    if 'int8' in fast_precisions(engine, features):  # else int8 is never chosen: no file read
        try:
            _existing_int8(onnx_path)
        except BackendError as err:
            table = _without(table, engine, 'int8')
            if int8_model_path(onnx_path).exists():  # a missing file is the usual case
                skipped.append(f'int8 not used: {err}')
    choice = choose_precision(table, engine, features)
    path = int8_model_path(onnx_path) if choice.precision == 'int8' else onnx_path
    notes = list(choice.passed_over) + skipped
    passed_over = f' ({"; ".join(notes)})' if notes else ''
    why = f'auto on {features.model}{passed_over}'
    return Resolved(path, choice.precision, why, tuple(skipped))


def _existing_int8(onnx_path: Path) -> Path:
    """The int8 file quantized from ``onnx_path`` as it is now; an error names what is wrong."""
    path = int8_model_path(onnx_path)
    if not path.is_file():
        raise BackendError(f'{path}: no int8 model next to {onnx_path.name} (the deploy tool '
                           "writes it when verify.precisions includes 'int8', as in "
                           'configs/srcnn_dynamic_openvino.py)')
    try:
        recorded = read_onnx_metadata(path).get(FLOAT_MODEL_SHA256_KEY)
    except Exception as err:  # onnx's decode errors: the file is not a model
        raise BackendError(f'{path}: cannot read the int8 model ({first_line(err)})') from None
    if recorded != file_sha256(onnx_path):
        raise BackendError(f'{path}: this int8 model was not quantized from {onnx_path.name} '
                           'as it is now (an older export?); deploy again to rewrite it')
    return path
