"""Load a deploy config (mmengine ``Config`` with ``_base_`` inheritance) and validate it, once.

A config is Python and is executed when loaded: configs are trusted input, like code. Loading
also imports the modules listed in ``custom_imports`` (the mmengine convention, with the
current directory on the import path, as ``python -m`` has it), which is how a user's own
rewriters get registered without changing this package.

:func:`load_deploy_config` is the one validation point: every key the pipeline reads is checked
here, before any work, and a key this project does not know is an error that names it and the
closest known one (a typo such as ``verify.atoll`` must not be ignored). Names starting with
``_`` are left alone: they are the config author's own helper variables. The backend's options
are checked by the backend wrapper that owns them; the model's by the model class when it is
built.
"""
import contextlib
import difflib
import importlib
import math
import os
import sys
from pathlib import Path, PurePath
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from mmengine.config import Config, DictAction

from mmdeploy_srcnn.backends import BackendError, validate_backend_config
from mmdeploy_srcnn.utils.model_meta import FACTOR_FORMATS
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale
from mmdeploy_srcnn.utils.sizes import resized_length, unenlarged_sides

PathLike = Union[str, os.PathLike]
EXPORTERS = {'torchscript': (11, 20), 'dynamo': (18, 23)}
TOP_LEVEL_KEYS = ('model', 'checkpoint', 'demo_image', 'quality_table', 'onnx_config',
                  'backend_config', 'verify', 'custom_imports')
ONNX_CONFIG_KEYS = ('exporter', 'opset_version', 'save_file', 'input_names', 'output_names',
                    'factor_format', 'matmul_resize', 'dynamic_axes')
VERIFY_KEYS = ('scales', 'sizes', 'batch_sizes', 'atol', 'cross_backend_atol',
               'compare_backends', 'precisions')
TOLERANCE_KEYS = ('atol', 'min_psnr')
DEFAULT_CROSS_BACKEND_ATOL = 1e-5
PATH_KEYS = ('checkpoint', 'demo_image', 'quality_table')
MAX_CASE_OUTPUT_PIXELS = 4_000_000
"""Largest output (batch x height x width) of one verification case or demo image: an SRCNN
run holds about 1.8 KB per output pixel (7 GB here), and PyTorch's reference as much again."""

__all__ = ['ConfigError', 'EXPORTERS', 'load_deploy_config', 'parse_cfg_options',
           'validate_deploy_config']


class ConfigError(ValueError):
    """A deploy config that is missing a key, has an unknown one or a wrong value."""


@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    """Put the current directory first on ``sys.path`` for the duration (custom_imports)."""
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        sys.path.remove(cwd)


def _import_custom_modules(custom_imports: Any, source: str) -> None:
    if not isinstance(custom_imports, Mapping) or not isinstance(custom_imports.get('imports'),
                                                                 (list, tuple, str)):
        _fail(source, 'custom_imports', "must be dict(imports=['module', ...])")
    unknown = set(custom_imports) - {'imports', 'allow_failed_imports'}
    if unknown:
        _unknown(source, 'custom_imports', sorted(unknown)[0], ('imports', 'allow_failed_imports'))
    names = custom_imports['imports']
    names = [names] if isinstance(names, str) else list(names)
    with _cwd_importable():
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError as err:
                if custom_imports.get('allow_failed_imports', False):
                    continue
                _fail(source, 'custom_imports', f'cannot import {name!r} ({err}; searched the '
                                                f'current directory and sys.path: run from the '
                                                f'folder that holds it, or add that folder to '
                                                f'PYTHONPATH)')


def load_config(path: PathLike, cfg_options: Optional[Mapping[str, Any]] = None) -> Config:
    """Read any of the project's configs (deploy or training): ``_base_`` files, ``cfg_options``
    merged, ``custom_imports`` imported; no schema check (:func:`load_deploy_config` adds it).

    Raises:
        ConfigError: a missing file, a config that cannot be executed, bad ``cfg_options`` or
            a custom import that fails.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(f'{path}: config file not found')
    try:
        cfg = Config.fromfile(str(path), import_custom_modules=False)
    except Exception as err:  # the config is Python: it may raise anything
        raise ConfigError(f'{path}: cannot load config: {type(err).__name__}: '
                          f'{_first_line(err)}') from None
    if cfg_options:
        try:
            cfg.merge_from_dict(dict(cfg_options))
        except Exception as err:  # e.g. a.b=1 where a is not a dict
            raise ConfigError(f'{source}: --cfg-options: {_first_line(err)}') from None
    if 'custom_imports' in cfg:
        _import_custom_modules(cfg.custom_imports, source)
    for key in PATH_KEYS:  # '{{ fileDirname }}/../../x' -> a clean path for messages
        if isinstance(cfg.get(key), str) and cfg[key]:
            cfg[key] = os.path.normpath(cfg[key])
    return cfg


def load_deploy_config(path: PathLike, cfg_options: Optional[Mapping[str, Any]] = None
                       ) -> Config:
    """Read ``path`` (with its ``_base_`` files and ``custom_imports``), merge ``cfg_options``
    (``{'onnx_config.opset_version': 13}``) and validate the result.

    Raises:
        ConfigError: a missing file, a config that cannot be executed, a missing, unknown or
            wrong key (the message names it).
    """
    cfg = load_config(path, cfg_options)
    validate_deploy_config(cfg, source=str(path))
    return cfg


def parse_cfg_options(items: Sequence[str]) -> Dict[str, Any]:
    """``['verify.atol=1e-5', 'verify.sizes=[(8,8)]']`` -> ``{'verify.atol': 1e-05, ...}``.

    Values are read the mmengine way (numbers, ``True``/``False``/``None``, lists and tuples
    in brackets, anything else a string). A malformed item is a :class:`ConfigError`.
    """
    options: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key or not all(key.split('.')):
            raise ConfigError(f'--cfg-options: {item!r} is not KEY=VALUE with a dotted key '
                              '(e.g. verify.atol=1e-5)')
        try:
            options[key] = DictAction._parse_iterable(value)
        except (AssertionError, RecursionError, ValueError) as err:  # unbalanced brackets...
            raise ConfigError(f'--cfg-options: {item!r}: cannot read the value '
                              f'({type(err).__name__}: {_first_line(err)}); give numbers, '
                              'strings, True/False/None or [lists]/(tuples) of them') from None
    return options


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _fail(source: str, key: str, problem: str) -> None:
    raise ConfigError(f'{source}: {key}: {problem}')


def _unknown(source: str, section: str, key: str, known: Sequence[str]) -> None:
    full = f'{section}.{key}' if section else key
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{section + '.' if section else ''}{close[0]}'?" if close else ''
    _fail(source, full, f'unknown key (known: {", ".join(known)}){hint}')


def _check_known(node: Mapping[str, Any], known: Sequence[str], section: str,
                 source: str) -> None:
    for key in node:
        if isinstance(key, str) and key.startswith('_'):
            continue  # the author's own helper variables
        if key not in known:
            _unknown(source, section, str(key), known)


def _require(cfg: Any, key: str, source: str, types: Union[type, Tuple[type, ...]]) -> Any:
    node = cfg
    for part in key.split('.'):
        if not hasattr(node, 'get') or part not in node:
            _fail(source, key, 'missing (required key)')
        node = node[part]
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(node, types) or isinstance(node, bool) and bool not in types:
        names = ' or '.join(t.__name__ for t in types)
        _fail(source, key, f'must be {names}, got {type(node).__name__} {node!r}')
    return node


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
    if not value or pure.is_absolute() or '..' in pure.parts or value.endswith(('/', '.')):
        _fail(source, key, f'must be a file name inside the work dir (relative, no ".."), '
                           f'got {value!r}')


def _validate_onnx_config(cfg: Config, source: str) -> None:
    _check_known(_require(cfg, 'onnx_config', source, dict), ONNX_CONFIG_KEYS, 'onnx_config',
                 source)
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
    save_file = _require(cfg, 'onnx_config.save_file', source, str)
    _check_relative_file(save_file, source, 'onnx_config.save_file')
    if not save_file.endswith('.onnx'):
        _fail(source, 'onnx_config.save_file', f'must end with .onnx, got {save_file!r}')
    input_names = _require(cfg, 'onnx_config.input_names', source, (list, tuple))
    if (len(input_names) != 2 or not all(isinstance(n, str) and n for n in input_names)
            or input_names[0] == input_names[1]):
        _fail(source, 'onnx_config.input_names',
              f'must be two different names [image, factor], got {input_names!r}')
    output_names = _require(cfg, 'onnx_config.output_names', source, (list, tuple))
    if len(output_names) != 1 or not all(isinstance(n, str) and n for n in output_names):
        _fail(source, 'onnx_config.output_names', f'must be one name, got {output_names!r}')
    dynamic_axes = _require(cfg, 'onnx_config.dynamic_axes', source, dict)
    known = [*input_names, *output_names]
    for name, axes in dynamic_axes.items():
        if name not in known:
            _fail(source, 'onnx_config.dynamic_axes',
                  f'{name!r} is not an input or output name ({", ".join(known)})')
        if not isinstance(axes, dict) or not all(
                isinstance(a, int) and 0 <= a < 4 and isinstance(label, str) and label
                for a, label in axes.items()):
            _fail(source, f'onnx_config.dynamic_axes.{name}',
                  f'must map axis numbers 0..3 to labels, got {axes!r}')
    factor_format = _require(cfg, 'onnx_config.factor_format', source, str)
    if factor_format not in FACTOR_FORMATS:
        _fail(source, 'onnx_config.factor_format',
              f'must be one of {", ".join(FACTOR_FORMATS)}, got {factor_format!r}')
    _require(cfg, 'onnx_config.matmul_resize', source, bool)


def _validate_verify(cfg: Config, source: str) -> None:
    _check_known(_require(cfg, 'verify', source, dict), VERIFY_KEYS, 'verify', source)
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
    for size in sizes:
        for scale in scales:
            try:
                check_case_size(max(batch_sizes), size, scale)
            except ValueError as err:
                _fail(source, 'verify', str(err))
    for key in ('atol', 'cross_backend_atol'):
        if key == 'cross_backend_atol' and key not in cfg.verify:
            continue  # optional
        atol = _require(cfg, f'verify.{key}', source, (int, float))
        if not (math.isfinite(atol) and atol > 0):
            _fail(source, f'verify.{key}', f'must be a positive number, got {atol!r}')
    compare = cfg.verify.get('compare_backends', [])
    if not isinstance(compare, (list, tuple)) or not all(isinstance(n, str) for n in compare):
        _fail(source, 'verify.compare_backends',
              f'must be a list of backend names, got {compare!r}')
    for name in compare:
        try:
            validate_backend_config({'type': name})
        except BackendError as err:
            _fail(source, 'verify.compare_backends', str(err))
    _validate_precisions(cfg, source)


def check_case_size(batch: int, size: Sequence[int], scale: Any) -> None:
    """``ValueError`` when one model run on ``batch`` images of ``size`` (height, width) at
    ``scale`` would exceed :data:`MAX_CASE_OUTPUT_PIXELS` output pixels, or a factor above 1
    would add no pixel to a side."""
    scale_h, scale_w = parse_scale(scale)
    unchanged = unenlarged_sides(size, (scale_h, scale_w))
    if unchanged:
        raise ValueError(f'x{format_scale(scale)} adds no pixel to a side of {size[unchanged[0]]} '
                         '(engines copy such a side where the model resamples it, so the case '
                         'would test nothing the app runs); use a larger scale')
    pixels = batch * resized_length(size[0], scale_h) * resized_length(size[1], scale_w)
    if pixels > MAX_CASE_OUTPUT_PIXELS:
        raise ValueError(f'batch {batch} of {size[1]}x{size[0]} (width x height) at '
                         f'x{format_scale(scale)} gives {pixels:.3g} output pixels per model run, '
                         f'over the limit of {MAX_CASE_OUTPUT_PIXELS / 1e6:g} megapixels '
                         '(about 1.8 KB of memory each); use a smaller size or scale')


def _validate_precisions(cfg: Config, source: str) -> None:
    """``verify.precisions``: ``{precision: dict(atol=..., min_psnr=...)}``, each a precision
    the configured backend runs."""
    precisions = cfg.verify.get('precisions', {})
    if not isinstance(precisions, dict):
        _fail(source, 'verify.precisions', f"must be a dict such as dict(bf16=dict(atol=0.05, "
                                           f"min_psnr=40)), got {precisions!r}")
    backend_type = cfg.backend_config.type
    for precision, tolerance in precisions.items():
        key = f'verify.precisions.{precision}'
        try:
            validate_backend_config({'type': backend_type, 'precision': precision})
        except BackendError as err:
            _fail(source, key, str(err).replace('backend_config.precision: ', ''))
        if not isinstance(tolerance, dict):
            _fail(source, key, f'must be dict(atol=..., min_psnr=...), got {tolerance!r}')
        _check_known(tolerance, TOLERANCE_KEYS, key, source)
        atol = _require(cfg, f'{key}.atol', source, (int, float))
        if not (math.isfinite(atol) and atol > 0):
            _fail(source, f'{key}.atol', f'must be a positive number, got {atol!r}')
        min_psnr = tolerance.get('min_psnr')
        if min_psnr is not None and (isinstance(min_psnr, bool) or not isinstance(
                min_psnr, (int, float)) or not math.isfinite(min_psnr)):
            _fail(source, f'{key}.min_psnr', f'must be a number of dB, got {min_psnr!r}')


def validate_deploy_config(cfg: Config, source: str = '<config>') -> None:
    """Check every key the deploy pipeline reads; raise :class:`ConfigError` naming the first
    bad one. :func:`load_deploy_config` calls it; call it yourself for a Config you built."""
    _check_known(cfg, TOP_LEVEL_KEYS, '', source)
    _validate_onnx_config(cfg, source)
    backend_config = _require(cfg, 'backend_config', source, dict)
    _require(cfg, 'backend_config.type', source, str)
    try:
        validate_backend_config(backend_config)
    except BackendError as err:
        raise ConfigError(f'{source}: {err}') from None
    _require(cfg, 'model', source, dict)
    _require(cfg, 'model.type', source, str)
    for key in PATH_KEYS:
        value = cfg.get(key)
        if value is not None and not isinstance(value, str):
            _fail(source, key, f'must be a path or None, got {value!r}')
    _validate_verify(cfg, source)
