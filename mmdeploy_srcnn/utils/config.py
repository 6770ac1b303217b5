"""Load deploy configs (mmengine ``Config`` files with ``_base_`` inheritance) and validate them.

A config is Python and is executed when loaded: configs are trusted input, like code. Loading
also imports the modules listed in ``custom_imports`` (the mmengine convention), which is how a
user's own rewriters get registered without changing this package.

Validation runs before any work, so a missing or wrong key is reported by name
(``onnx_config.opset_version``) instead of failing deep inside an export.
"""
import math
import os
from pathlib import Path, PurePath
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config, DictAction

from mmdeploy_srcnn.utils.model_meta import FACTOR_FORMATS
from mmdeploy_srcnn.utils.scale import parse_scale

PathLike = Union[str, os.PathLike]
EXPORTERS = {'torchscript': (11, 20), 'dynamo': (18, 23)}
RESIZE_MODES = ('nearest', 'bilinear', 'bicubic')

__all__ = ['ConfigError', 'DictAction', 'load_deploy_config', 'validate_deploy_config',
           'EXPORTERS']


class ConfigError(ValueError):
    """A deploy config that is missing a key or has a wrong value."""


def load_deploy_config(path: PathLike, cfg_options: Optional[dict] = None) -> Config:
    """Read ``path`` (with its ``_base_`` files and ``custom_imports``), merge ``cfg_options``
    (``{'onnx_config.opset_version': 13}``) and validate the result."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'{path}: config file not found')
    try:
        cfg = Config.fromfile(str(path))
    except (ImportError, SyntaxError, KeyError, ValueError, TypeError, OSError) as err:
        raise ConfigError(f'{path}: cannot load config: {err}') from err
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    validate_deploy_config(cfg, source=str(path))
    return cfg


def _fail(source: str, key: str, problem: str) -> None:
    raise ConfigError(f'{source}: {key}: {problem}')


def _require(cfg: Any, key: str, source: str, types: Union[type, Tuple[type, ...]]) -> Any:
    node = cfg
    for part in key.split('.'):
        if not hasattr(node, 'get') or part not in node:
            _fail(source, key, 'missing (required key)')
        node = node[part]
    if not isinstance(node, types) or isinstance(node, bool) and bool not in _as_tuple(types):
        names = ' or '.join(t.__name__ for t in _as_tuple(types))
        _fail(source, key, f'must be {names}, got {type(node).__name__} {node!r}')
    return node


def _as_tuple(types: Union[type, Tuple[type, ...]]) -> Tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _check_pairs(items: Iterable[Any], source: str, key: str) -> List[Tuple[int, int]]:
    pairs = []
    for item in items:
        if not (isinstance(item, Sequence) and len(item) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item)):
            _fail(source, key, f'each entry must be a (height, width) pair of positive ints, '
                               f'got {item!r}')
        pairs.append((item[0], item[1]))
    return pairs


def _check_relative_file(value: str, source: str, key: str) -> None:
    pure = PurePath(value)
    if not value or pure.is_absolute() or '..' in pure.parts:
        _fail(source, key, f'must be a file name inside the work dir (relative, no "..") , '
                           f'got {value!r}')


def validate_deploy_config(cfg: Config, source: str = '<config>') -> None:
    """Check every key the deploy pipeline reads; raise :class:`ConfigError` naming the first
    bad one."""
    exporter = _require(cfg, 'onnx_config.exporter', source, str)
    if exporter not in EXPORTERS:
        _fail(source, 'onnx_config.exporter',
              f'must be one of {", ".join(EXPORTERS)}, got {exporter!r}')
    opset = _require(cfg, 'onnx_config.opset_version', source, int)
    low, high = EXPORTERS[exporter]
    if not low <= opset <= high:
        _fail(source, 'onnx_config.opset_version',
              f'the {exporter} exporter supports opset {low}..{high} for a dynamic Resize, '
              f'got {opset}')
    _check_relative_file(_require(cfg, 'onnx_config.save_file', source, str), source,
                         'onnx_config.save_file')
    input_names = _require(cfg, 'onnx_config.input_names', source, (list, tuple))
    if len(input_names) != 2 or not all(isinstance(n, str) and n for n in input_names):
        _fail(source, 'onnx_config.input_names',
              f'must be two names [image, factor], got {input_names!r}')
    output_names = _require(cfg, 'onnx_config.output_names', source, (list, tuple))
    if len(output_names) != 1 or not all(isinstance(n, str) and n for n in output_names):
        _fail(source, 'onnx_config.output_names', f'must be one name, got {output_names!r}')
    dynamic_axes = _require(cfg, 'onnx_config.dynamic_axes', source, dict)
    known = set(input_names) | set(output_names)
    for name, axes in dynamic_axes.items():
        if name not in known:
            _fail(source, 'onnx_config.dynamic_axes',
                  f'{name!r} is not an input or output name ({", ".join(sorted(known))})')
        if not isinstance(axes, dict) or not all(
                isinstance(a, int) and 0 <= a < 4 and isinstance(label, str)
                for a, label in axes.items()):
            _fail(source, f'onnx_config.dynamic_axes.{name}',
                  f'must map axis numbers 0..3 to labels, got {axes!r}')
    factor_format = _require(cfg, 'onnx_config.factor_format', source, str)
    if factor_format not in FACTOR_FORMATS:
        _fail(source, 'onnx_config.factor_format',
              f'must be one of {", ".join(FACTOR_FORMATS)}, got {factor_format!r}')

    matmul_resize = cfg.onnx_config.get('matmul_resize', True)
    if not isinstance(matmul_resize, bool):
        _fail(source, 'onnx_config.matmul_resize', f'must be True or False, got {matmul_resize!r}')

    backend_type = _require(cfg, 'backend_config.type', source, str)
    precision = cfg.backend_config.get('precision', 'f32')
    if matmul_resize and backend_type == 'openvino' and precision != 'f32':
        # Range, the sample coordinates and the tap indices in bf16/f16 are off by pixels.
        _fail(source, 'backend_config.precision', f'the matmul resize (onnx_config.'
              f'matmul_resize=True) needs precision f32 on OpenVINO, got {precision!r}')
    _require(cfg, 'model.type', source, str)
    checkpoint = cfg.get('checkpoint')
    if checkpoint is not None and not isinstance(checkpoint, str):
        _fail(source, 'checkpoint', f'must be a path or None, got {checkpoint!r}')

    scales = _require(cfg, 'verify.scales', source, (list, tuple))
    if not scales:
        _fail(source, 'verify.scales', 'must list at least one scale')
    for scale in scales:
        try:
            parse_scale(scale)
        except ValueError as err:
            _fail(source, 'verify.scales', str(err))
    sizes = _require(cfg, 'verify.sizes', source, (list, tuple))
    if not sizes:
        _fail(source, 'verify.sizes', 'must list at least one (height, width)')
    _check_pairs(sizes, source, 'verify.sizes')
    batch_sizes = _require(cfg, 'verify.batch_sizes', source, (list, tuple))
    if not batch_sizes or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0
                                  for b in batch_sizes):
        _fail(source, 'verify.batch_sizes', f'must list positive ints, got {batch_sizes!r}')
    for key in ('atol', 'cross_backend_atol'):
        if key == 'cross_backend_atol' and key not in cfg.verify:
            continue  # optional, defaults to 1e-5
        atol = _require(cfg, f'verify.{key}', source, (int, float))
        if not (math.isfinite(atol) and atol > 0):
            _fail(source, f'verify.{key}', f'must be a positive number, got {atol!r}')
    compare = cfg.verify.get('compare_backends', [])
    if not isinstance(compare, (list, tuple)) or not all(isinstance(n, str) for n in compare):
        _fail(source, 'verify.compare_backends', f'must be a list of backend names, '
                                                 f'got {compare!r}')
