"""Choosing an inference precision: CPU features, the quality table, and the ``auto`` rule.

``--precision auto`` must be fast where the CPU has reduced-precision units and never silently
worse: it takes the fastest precision whose Y-PSNR loss against f32, measured on the built-in
test split, is at most :data:`MAX_AUTO_LOSS_DB` at every scale of :data:`QUALITY_SCALES`, among
the precisions this CPU has fast units for (:class:`CpuFeatures`). f32 is always allowed.

The losses come from a *quality table* that export measures and records in the exported
model's ``metadata_props`` under :data:`QUALITY_TABLE_KEY` (JSON, see
:func:`parse_quality_table`). A table read from a file is untrusted input: it is checked for
structure and sane bounds, and a bad one is refused with a :class:`QualityTableError` that
names the problem. Torch-free, no engine imports: the decision is a pure function of the
table, the engine name and the CPU features, so it is testable for any CPU.
"""
import dataclasses
import json
import math
import platform
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

from .scale import parse_decimal

#: Every precision name the project uses (OpenVINO's spelling for the float types).
PRECISIONS: Tuple[str, ...] = ('f32', 'bf16', 'f16', 'int8')
#: Precisions each engine accepts. int8 means the separate int8 model file
#: (``end2end_int8.onnx``); the float types are the engine's own precision setting.
#: ``'default'``: no precision hint at all, the engine's own choice (OpenVINO: bf16 on CPUs
#: with bf16 instructions). Verified, never chosen by ``auto``.
ENGINE_DEFAULT = 'default'
ENGINE_PRECISIONS: Dict[str, Tuple[str, ...]] = {
    'onnxruntime': ('f32', 'int8'),
    'openvino': ('f32', 'bf16', 'f16', 'int8', ENGINE_DEFAULT),
}
#: Scales at which a reduced precision must keep its quality for ``auto`` to pick it.
QUALITY_SCALES: Tuple[float, ...] = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
#: Largest Y-PSNR loss against f32 (dB, at any of the scales) that ``auto`` accepts.
MAX_AUTO_LOSS_DB = 0.02
#: ``metadata_props`` key of the quality table in an exported model.
QUALITY_TABLE_KEY = 'mmdeploy_srcnn.quality_table'
#: ``metadata_props`` key naming a model file's precision; absent means f32.
PRECISION_KEY = 'mmdeploy_srcnn.precision'
#: ``metadata_props`` key, in an int8 file, of the SHA-256 of the float file it was quantized
#: from: a re-export leaves an old ``end2end_int8.onnx`` behind, which must not be run for it.
FLOAT_MODEL_SHA256_KEY = 'mmdeploy_srcnn.float_model_sha256'
QUALITY_TABLE_VERSION = 1

# Fastest first, per engine, among the precisions the engine runs; each needs the CPU units of
# CpuFeatures.fast_*. Measured with benchmarks/precision_speed.py on a CPU with VNNI and without
# AMX: OpenVINO's int8 convolutions are faster than its f32 ones. On AMX CPUs int8 tiles have
# twice the bf16 throughput, so int8 stays first (not measured here). ONNX Runtime's int8
# convolutions are slower than its f32 ones for SRCNN's shapes (3 input and 3 output channels),
# so its int8 is never a speed choice; it has no bf16/f16 execution on x86.
SPEED_ORDER: Dict[str, Tuple[str, ...]] = {
    'openvino': ('int8', 'bf16', 'f16', 'f32'),
    'onnxruntime': ('f32',),
}

# Bounds for an untrusted table: generous for real data, small enough to refuse junk.
_MAX_TABLE_CHARS = 65536
_LOSS_BOUNDS_DB = (-1.0, 100.0)  # a reduced precision may measure a hair better than f32
_SCALE_BOUNDS = (1.0, 16.0)
_MAX_ENGINES, _MAX_SCALES = 16, 64
_MAX_PROVENANCE, _MAX_PROVENANCE_CHARS = 16, 200
_DECIMALS = 4  # 0.1 mdB: far below the evaluation's resolution, keeps the metadata short


@dataclasses.dataclass(frozen=True)
class CpuFeatures:
    """The CPU model name and the instruction-set flags that matter for precision.

    ``flags`` uses the Linux ``/proc/cpuinfo`` spelling (``avx512_bf16``, ``amx_int8`` ...).
    """

    model: str
    flags: FrozenSet[str]

    @property
    def fast_bf16(self) -> bool:
        """AMX-BF16 tiles. AVX512-BF16 alone is not enough: on such a CPU (no AMX) OpenVINO's
        bf16 matmuls and convolutions measured slower than its f32 ones."""
        return 'amx_bf16' in self.flags

    @property
    def fast_f16(self) -> bool:
        """AMX-FP16 tiles (AVX512-FP16 alone measured slower than f32, as for bf16)."""
        return 'amx_fp16' in self.flags

    @property
    def fast_int8(self) -> bool:
        """Non-saturating int8 dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8).

        Without them x86 engines multiply u8 x s8 through a saturating 16-bit step: slower,
        and with results that differ from the ones a quality table was measured with.
        """
        return bool({'avx512_vnni', 'avx_vnni', 'amx_int8'} & self.flags)

    def summary(self) -> str:
        """One line for benchmark and log output: the model and each relevant flag."""
        wanted = ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'avx512_fp16',
                  'amx_bf16', 'amx_int8', 'amx_fp16')
        present = ', '.join(f'{flag}={"yes" if flag in self.flags else "no"}'
                            for flag in wanted)
        return f'{self.model} ({present})'


def read_cpu_features(cpuinfo: Union[str, Path] = '/proc/cpuinfo') -> CpuFeatures:
    """The CPU's features from Linux's ``/proc/cpuinfo``.

    Elsewhere (no such file, or no ``flags`` line) the flags are empty, so every choice made
    from them falls back to f32: an unknown CPU is never assumed to have fast units.
    """
    try:
        text = Path(cpuinfo).read_text(encoding='utf-8', errors='replace')
    except OSError:
        return CpuFeatures(platform.processor() or platform.machine() or 'unknown CPU',
                           frozenset())
    model, flags = '', frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'model name' and not model:
            model = value.strip()
        elif key in ('flags', 'Features') and not flags:  # 'Features' on ARM
            flags = frozenset(value.split())
    return CpuFeatures(model or platform.machine() or 'unknown CPU', flags)


def int8_model_path(onnx_path: Union[str, Path]) -> Path:
    """Where the int8 model of a float model lives: ``end2end.onnx`` -> ``end2end_int8.onnx``."""
    path = Path(onnx_path)
    return path.with_name(f'{path.stem}_int8{path.suffix}')


def check_precision(engine: str, precision: str) -> str:
    """``precision`` if ``engine`` supports it; else ``ValueError`` naming the supported ones.

    ``'auto'`` is not a precision: resolve it with :func:`choose_precision` first.
    """
    if engine not in ENGINE_PRECISIONS:
        raise ValueError(f'unknown engine {engine!r} (known: {", ".join(ENGINE_PRECISIONS)})')
    if precision not in ENGINE_PRECISIONS[engine]:
        raise ValueError(f'precision {precision!r} is not supported on {engine} '
                         f'(supported: {", ".join(ENGINE_PRECISIONS[engine])})')
    return precision


def engine_precision_pairs(engines: Sequence[str], precisions: Sequence[str]
                           ) -> List[Tuple[str, str]]:
    """``(engine, precision)`` for each precision (in order) on each engine that runs it
    (engines without precision options run f32 only); a precision that no engine runs is a
    ``ValueError`` naming the supported ones."""
    pairs = [(engine, precision) for precision in precisions for engine in engines
             if precision in ENGINE_PRECISIONS.get(engine, ('f32',))]
    for precision in precisions:
        if not any(chosen == precision for _, chosen in pairs):
            check_precision(engines[0], precision)  # raises, naming the supported ones
    return pairs


def fast_precisions(engine: str, features: CpuFeatures) -> Tuple[str, ...]:
    """Precisions that ``engine`` runs faster than f32 on this CPU, fastest first, then f32."""
    check_precision(engine, 'f32')  # an unknown engine: the error names the known ones
    has_unit = {'f32': True, 'bf16': features.fast_bf16, 'f16': features.fast_f16,
                'int8': features.fast_int8}
    return tuple(p for p in SPEED_ORDER[engine] if has_unit[p])


class QualityTableError(ValueError):
    """A quality table that is malformed or out of bounds."""


@dataclasses.dataclass(frozen=True)
class QualityTable:
    """Y-PSNR loss in dB against f32 (positive: worse), per engine, precision and scale."""

    losses: Mapping[str, Mapping[str, Mapping[float, float]]]
    split: str = 'builtin:test'
    #: what was measured (e.g. ``checkpoint_sha256``, ``resize``): a table only describes the
    #: weights and graph it was measured on
    provenance: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-serialisable form :func:`parse_quality_table` reads (scales as strings,
        losses rounded to 4 decimals)."""
        data = {'version': QUALITY_TABLE_VERSION, 'metric': 'y_psnr_loss_db',
                'split': self.split,
                'losses': {engine: {precision: {f'{scale:g}': round(loss, _DECIMALS)
                                                for scale, loss in sorted(by_scale.items())}
                                    for precision, by_scale in by_precision.items()}
                           for engine, by_precision in self.losses.items()}}
        if self.provenance:
            data['provenance'] = dict(self.provenance)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _fail(source: str, where: str, problem: str) -> QualityTableError:
    return QualityTableError(f'{source}: bad quality table at {where}: {problem}')


def _mapping(value: Any, source: str, where: str, max_items: int) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(source, where, f'expected an object, got {type(value).__name__}')
    if len(value) > max_items:
        raise _fail(source, where, f'{len(value)} entries, at most {max_items} allowed')
    return value


def _scale(key: str, source: str, where: str) -> float:
    try:
        scale = parse_decimal(key)
    except ValueError:
        raise _fail(source, where, f'scale {key!r} is not a number') from None
    low, high = _SCALE_BOUNDS
    if not (math.isfinite(scale) and low < scale <= high):
        raise _fail(source, where, f'scale {key!r} outside ({low:g}, {high:g}]')
    return scale


def _loss(value: Any, source: str, where: str) -> float:
    low, high = _LOSS_BOUNDS_DB
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(source, where, f'loss {value!r} is not a number')
    if not (math.isfinite(value) and low <= value <= high):
        raise _fail(source, where, f'loss {value!r} dB outside [{low:g}, {high:g}]')
    return float(value)


def parse_quality_table(text: str, source: str = 'quality table') -> QualityTable:
    """Read and validate a quality table from JSON text (``source`` names it in errors).

    Format (version 1)::

        {"version": 1, "metric": "y_psnr_loss_db", "split": "builtin:test",
         "losses": {"openvino": {"int8": {"1.5": 0.012, "2": 0.015, ...},
                                 "bf16": {...}},
                    "onnxruntime": {"int8": {...}}}}

    Engines are any names (a table may describe engines this build does not know); precisions
    must be known names; an ``f32`` entry, if present, must be all zeros.
    """
    if len(text) > _MAX_TABLE_CHARS:
        raise _fail(source, 'top level', f'{len(text)} characters, at most '
                    f'{_MAX_TABLE_CHARS} allowed')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise _fail(source, 'top level', f'not JSON ({err})') from None
    data = _mapping(data, source, 'top level', 8)
    if data.get('version') != QUALITY_TABLE_VERSION:
        raise _fail(source, 'version', f'{data.get("version")!r}, this build reads version '
                    f'{QUALITY_TABLE_VERSION}')
    if data.get('metric') != 'y_psnr_loss_db':
        raise _fail(source, 'metric', f'{data.get("metric")!r}, expected \'y_psnr_loss_db\'')
    split = data.get('split')
    if not isinstance(split, str) or not split:
        raise _fail(source, 'split', f'expected a non-empty string, got {split!r}')
    losses: Dict[str, Dict[str, Dict[float, float]]] = {}
    for engine, by_precision in _mapping(data.get('losses'), source, 'losses',
                                         _MAX_ENGINES).items():
        where = f'losses.{engine}'
        losses[engine] = {}
        for precision, by_scale in _mapping(by_precision, source, where,
                                            len(PRECISIONS)).items():
            if precision not in PRECISIONS:
                raise _fail(source, where, f'unknown precision {precision!r} '
                            f'(known: {", ".join(PRECISIONS)})')
            where_p = f'{where}.{precision}'
            row = {_scale(key, source, where_p): _loss(value, source, f'{where_p}.{key}')
                   for key, value in _mapping(by_scale, source, where_p, _MAX_SCALES).items()}
            if precision == 'f32' and any(row.values()):
                raise _fail(source, where_p, 'f32 is the reference; its losses must be 0')
            losses[engine][precision] = row
    provenance = _mapping(data.get('provenance', {}), source, 'provenance', _MAX_PROVENANCE)
    for key, value in provenance.items():
        if not (isinstance(value, str) and len(value) <= _MAX_PROVENANCE_CHARS):
            raise _fail(source, f'provenance.{key}', f'expected a string of at most '
                        f'{_MAX_PROVENANCE_CHARS} characters, got {value!r:.80}')
    return QualityTable(losses, split, dict(provenance))


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """The chosen precision and, for logs, why each faster candidate was passed over."""

    precision: str
    passed_over: Tuple[str, ...] = ()


def _disqualified(table: Optional[QualityTable], engine: str, precision: str,
                  scales: Sequence[float], max_loss_db: float) -> Optional[str]:
    """Why ``precision`` may not be chosen, or None if its losses qualify it."""
    row = None if table is None else table.losses.get(engine, {}).get(precision)
    if row is None:
        return f'{precision}: no quality measured for {engine}'
    missing = [scale for scale in scales if scale not in row]
    if missing:
        return f'{precision}: no quality measured at x{", x".join(f"{s:g}" for s in missing)}'
    worst = max(scales, key=lambda scale: row[scale])
    if row[worst] > max_loss_db:
        return (f'{precision}: loses {row[worst]:.3f} dB at x{worst:g} '
                f'(limit {max_loss_db:g} dB)')
    return None


def choose_precision(table: Optional[QualityTable], engine: str, features: CpuFeatures,
                     max_loss_db: float = MAX_AUTO_LOSS_DB,
                     scales: Sequence[float] = QUALITY_SCALES) -> PrecisionChoice:
    """The ``auto`` rule: the fastest precision of ``engine`` on this CPU whose loss is at most
    ``max_loss_db`` at every scale; f32 when none qualifies or there is no table."""
    passed_over = []
    for precision in fast_precisions(engine, features):
        if precision == 'f32':
            break
        reason = _disqualified(table, engine, precision, scales, max_loss_db)
        if reason is None:
            return PrecisionChoice(precision, tuple(passed_over))
        passed_over.append(reason)
    return PrecisionChoice('f32', tuple(passed_over))
