"""The deploy pipeline behind ``tools/deploy.py``: check every input, export, verify, demo images,
report. Each step is its own function; :func:`run_deploy` runs them in order.

Everything that can be refused is refused by :func:`prepare_deploy`, before the first file is
written: the demo image, the checkpoint (a configured checkpoint that does not exist is an error;
random weights only when asked for), the model settings, the backends to compare, and the work
dir (every output path must resolve inside it, symlinks included).
"""
import collections
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import onnx
import onnxruntime
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

import mmdeploy_srcnn
from mmdeploy_srcnn.apis.config import DEFAULT_CROSS_BACKEND_ATOL, ConfigError, check_case_size
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.apis.verify import (PYTORCH, BackendComparison, Tolerance, VerificationRow,
                                        run_cases, verification_rows)
from mmdeploy_srcnn.backends import BackendError, BaseBackend, backend_names, build_backend
from mmdeploy_srcnn.models import ModelBuildError, build_model
from mmdeploy_srcnn.ops import dynamic_resize
from mmdeploy_srcnn.utils.fileio import atomic_write, file_sha256
from mmdeploy_srcnn.utils.image import from_float, read_image, to_float, write_image
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import (QUALITY_TABLE_KEY, QualityTable, QualityTableError,
                                            parse_quality_table)
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale

CHECKPOINT_SHA256_KEY = 'mmdeploy_srcnn.checkpoint_sha256'
IMAGES_DIR = 'images'
REPORT_FILE = 'report.json'


@dataclasses.dataclass
class DeployPlan:
    """Everything a deploy run needs, checked: nothing has been written yet."""

    cfg: Config
    work_dir: Path
    onnx_path: Path
    demo_image: Path
    demo_batch: np.ndarray
    model: nn.Module
    checkpoint: Optional[Path]  # None: random weights, asked for explicitly
    compare: Optional[List[str]]
    metadata: Dict[str, str]  # added to the exported file's metadata_props


@dataclasses.dataclass
class DeployResult:
    """What a deploy run produced."""

    onnx_path: Path
    report_path: Path
    image_paths: List[Path]
    rows: List[VerificationRow]
    comparison: Optional[BackendComparison] = None
    nodes: List[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (all(row.passed for row in self.rows)
                and (self.comparison is None or self.comparison.passed))


def scale_label(scale: Any) -> str:
    """``x2.5`` for a uniform scale, ``x2x3`` for (height, width) = (2, 3)."""
    return f'x{format_scale(scale)}'


def load_model(deploy_cfg: Config, checkpoint: Optional[Path]) -> nn.Module:
    """Build the configured model with ``checkpoint``'s weights (``None``: random weights).

    Raises :class:`ConfigError` for an unknown model or bad model settings and
    :class:`~mmdeploy_srcnn.models.CheckpointError` for a checkpoint that is missing or does
    not fit.
    """
    try:
        return build_model(deploy_cfg.model, checkpoint)
    except ModelBuildError as err:
        raise ConfigError(f'model: {err}') from None


def read_rgb_batch(image_path: Path) -> np.ndarray:
    """The image as a float32 NCHW RGB batch of one in [0, 1] (gray is replicated)."""
    image = read_image(image_path)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] in (1, 2):  # gray, gray + alpha
        image = np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(to_float(image[..., :3]).transpose(2, 0, 1)[None])


def _inside(path: Path, work_dir: Path) -> Path:
    """``path`` resolved (symlinks followed); it must stay inside ``work_dir``."""
    resolved = path.resolve()
    if resolved != work_dir and work_dir not in resolved.parents:
        raise ConfigError(f'{path}: resolves to {resolved}, outside the work dir {work_dir} '
                          '(a symlink?); refusing to write there')
    return resolved


def check_work_dir(work_dir: Path, save_file: str) -> Path:
    """The resolved work dir; every output path must resolve inside it."""
    if work_dir.exists() and not work_dir.is_dir():
        raise ConfigError(f'work dir {work_dir}: exists and is not a directory')
    resolved = work_dir.resolve()
    for relative in (save_file, IMAGES_DIR, REPORT_FILE):
        _inside(resolved / relative, resolved)
    return resolved


def prepare_deploy(cfg: Config, work_dir: Path, image_path: Path, checkpoint: Optional[Path],
                   compare: Optional[Sequence[str]] = None,
                   logger: Optional[MMLogger] = None) -> DeployPlan:
    """Check every input and build the model; raises before anything is written."""
    resolved = check_work_dir(Path(work_dir), cfg.onnx_config.save_file)
    demo_batch = read_rgb_batch(image_path)
    for scale in cfg.verify.scales:
        try:
            check_case_size(1, demo_batch.shape[2:], scale)
        except ValueError as err:
            raise ConfigError(f'{image_path}: the demo image: {err}') from None
    if compare:
        unknown = sorted(set(compare) - set(backend_names()))
        if unknown:
            raise ConfigError(f'--compare-backends: unknown backend {unknown[0]!r} '
                              f'(known backends: {", ".join(backend_names())})')
    if 'int8' in cfg.verify.get('precisions', {}):
        check_calibration_images()
    model = load_model(cfg, checkpoint)
    metadata = {}
    if checkpoint is not None:
        metadata[CHECKPOINT_SHA256_KEY] = file_sha256(checkpoint)
        if cfg.get('quality_table'):
            table = quality_table_for(Path(cfg.quality_table), metadata[CHECKPOINT_SHA256_KEY],
                                      cfg, logger)
            if table is not None:
                metadata[QUALITY_TABLE_KEY] = table.to_json()
    return DeployPlan(cfg=cfg, work_dir=resolved,
                      onnx_path=resolved / cfg.onnx_config.save_file, demo_image=image_path,
                      demo_batch=demo_batch, model=model, checkpoint=checkpoint,
                      compare=None if compare is None else list(compare), metadata=metadata)


def quality_table_for(path: Path, checkpoint_sha256: str, cfg: Config,
                      logger: Optional[MMLogger]) -> Optional[QualityTable]:
    """The config's quality table if it describes these weights and this resize graph
    (``--precision auto`` trusts it to pick a reduced precision); None, with a warning, if it
    describes others. A missing or malformed table is an error."""
    try:
        table = parse_quality_table(path.read_text(encoding='utf-8'), str(path))
    except OSError as err:
        raise ConfigError(f'quality_table: {path}: {err.strerror or err}') from None
    except QualityTableError as err:
        raise ConfigError(f'quality_table: {err}') from None
    resize = 'matmul' if cfg.onnx_config.matmul_resize else 'Resize'
    measured = table.provenance
    if measured.get('checkpoint_sha256') != checkpoint_sha256 or measured.get('resize') != resize:
        if logger is not None:
            logger.warning(f'quality_table {path} was measured on other weights or another '
                           f'resize ({measured.get("resize", "?")}, checkpoint '
                           f'{measured.get("checkpoint_sha256", "?")[:12]}); not recorded, so '
                           'srcnn-upscale --precision auto will run f32 (measure a table with '
                           'tools/test.py --quality-table)')
        return None
    return table


def check_calibration_images() -> None:
    """int8 calibration reads the built-in training images from optional packages."""
    from mmdeploy_srcnn.datasets import TRAIN_IMAGES, load_image

    try:
        load_image(TRAIN_IMAGES[0])
    except ModuleNotFoundError as err:
        raise ConfigError(f'verify.precisions: int8 is calibrated on the built-in training '
                          f'images: {err}') from None


def node_summary(nodes: Sequence[str]) -> str:
    """``'12 nodes (Conv x3, Relu x2, ...)'``: op types by count, most frequent first."""
    counts = collections.Counter(nodes).most_common()
    return f'{len(nodes)} nodes ({", ".join(f"{op} x{n}" for op, n in counts)})'


def comparison_backends(plan: DeployPlan, main_backend: BaseBackend,
                        logger: MMLogger) -> Dict[str, BaseBackend]:
    """The backends to compare: ``plan.compare``, or every available one when it is empty (a
    missing engine is then skipped with a warning; a named one must build). The main backend
    is reused, not built twice."""
    main = plan.cfg.backend_config.type
    backends: Dict[str, BaseBackend] = {}
    for name in plan.compare or backend_names():
        if name == main:
            backends[name] = main_backend
            continue
        try:
            backends[name] = build_backend(dict(type=name), plan.onnx_path)
        except BackendError as err:
            if plan.compare:
                raise
            logger.warning(f'backend {name} skipped in the comparison: {err}')
    return backends


def precision_tolerance(cfg: Config, precision: str) -> Tolerance:
    """The tolerance of a reduced precision, from ``verify.precisions``."""
    return Tolerance(**cfg.verify.precisions[precision])


def precision_backends(plan: DeployPlan, onnx_path: Path,
                       logger: MMLogger) -> Dict[str, BaseBackend]:
    """The configured backend at each precision of ``verify.precisions`` (``'int8'``: the
    convolutions quantized into ``end2end_int8.onnx``, calibrated on the built-in training
    images), named ``'<backend>/<precision>'``."""
    cfg = plan.cfg
    backends = {}
    for precision in cfg.verify.get('precisions', {}):
        path = onnx_path
        if precision == 'int8':
            path = quantize_model(onnx_path, plan.work_dir, logger)
        backends[f'{cfg.backend_config.type}/{precision}'] = build_backend(
            {**cfg.backend_config, 'precision': precision}, path)
    return backends


def quantize_model(onnx_path: Path, work_dir: Path, logger: MMLogger) -> Path:
    """``end2end_int8.onnx`` next to ``onnx_path``: its convolutions in int8."""
    from mmdeploy_srcnn.quantization import builtin_calibration_set, quantize_int8
    from mmdeploy_srcnn.utils.precision import int8_model_path

    target = _inside(int8_model_path(onnx_path), work_dir)
    start = time.perf_counter()
    calibration = builtin_calibration_set(ModelConvention.from_onnx(onnx_path))
    quantize_int8(onnx_path, target, calibration)
    logger.info(f'quantized the convolutions to int8 in {time.perf_counter() - start:.1f} s: '
                f'{target} ({len(calibration.inputs)} calibration samples from the built-in '
                'training images)')
    return target


def _resize(batch: np.ndarray, scale: Any, mode: str) -> np.ndarray:
    factor = torch.tensor(parse_scale(scale), dtype=torch.float32)
    with torch.no_grad():
        return dynamic_resize(torch.from_numpy(batch), factor, mode).numpy()


def _labelled(panel: np.ndarray, label: str) -> np.ndarray:
    """An H x W x 3 float panel with a white strip above it carrying ``label``."""
    strip = np.full((20, panel.shape[1], 3), 255, np.uint8)  # putText draws on 8-bit images
    cv2.putText(strip, label, (3, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([to_float(strip), panel], axis=0)


def write_demo_images(backend: BaseBackend, plan: DeployPlan) -> List[Path]:
    """For each verification scale: input (nearest) | bicubic | model, labelled, side by side."""
    convention = ModelConvention.from_metadata(backend.metadata)
    out_dir = plan.work_dir / IMAGES_DIR
    written = []
    for scale in plan.cfg.verify.scales:
        model_out = convention.rgb_output(backend.run(convention.model_inputs(plan.demo_batch,
                                                                              scale)))
        panels = {'input (nearest)': _resize(plan.demo_batch, scale, 'nearest'),
                  'bicubic': _resize(plan.demo_batch, scale, 'bicubic'),
                  f'{type(plan.model).__name__} {scale_label(scale)}': model_out}
        side_by_side = np.concatenate(
            [_labelled(np.clip(p[0], 0, 1).transpose(1, 2, 0), label)
             for label, p in panels.items()], axis=1)
        path = out_dir / f'{plan.demo_image.stem}_{scale_label(scale)}.png'
        _inside(path, plan.work_dir)
        write_image(path, from_float(side_by_side, np.uint8))
        written.append(path)
    return written


def write_report(plan: DeployPlan, result: DeployResult, export_seconds: float) -> None:
    """``report.json``: settings, versions, graph nodes and every comparison."""
    cfg = plan.cfg
    report = {
        'config': cfg.filename,
        'onnx': str(result.onnx_path),
        'checkpoint': str(plan.checkpoint) if plan.checkpoint else None,
        'weights': 'checkpoint' if plan.checkpoint else 'random (asked for with random weights)',
        'exporter': cfg.onnx_config.exporter,
        'opset': cfg.onnx_config.opset_version,
        'export_seconds': round(export_seconds, 3),
        'nodes': result.nodes,
        'backend': cfg.backend_config.type,
        'versions': {'mmdeploy_srcnn': mmdeploy_srcnn.__version__, 'torch': torch.__version__,
                     'onnx': onnx.__version__, 'onnxruntime': onnxruntime.__version__},
        'demo_image': str(plan.demo_image),
        'images': [str(path) for path in result.image_paths],
        'verification': [row.as_dict() for row in result.rows],
        'backend_comparison': result.comparison.as_dict() if result.comparison else None,
        'passed': result.passed,
    }
    with atomic_write(result.report_path, 'w') as file:
        json.dump(report, file, indent=2)


def run_deploy(plan: DeployPlan, logger: MMLogger) -> DeployResult:
    """Export, check, verify on the backend (and compare engines), demo images, report."""
    cfg = plan.cfg
    start = time.perf_counter()
    onnx_path = torch2onnx(plan.model, cfg, plan.work_dir, plan.metadata)
    export_seconds = time.perf_counter() - start
    nodes = [node.op_type for node in onnx.load(str(onnx_path)).graph.node]
    logger.info(f'exported {onnx_path} with the {cfg.onnx_config.exporter} exporter in '
                f'{export_seconds:.1f} s: {node_summary(nodes)}')

    backend = build_backend(cfg.backend_config, onnx_path)
    compared = {} if plan.compare is None else comparison_backends(plan, backend, logger)
    precisions = precision_backends(plan, onnx_path, logger)
    convention = ModelConvention.from_metadata(backend.metadata)
    main = cfg.backend_config.type
    results = run_cases(plan.model, {main: backend, **compared, **precisions}, cfg, convention)
    rows = verification_rows(results, main, Tolerance(cfg.verify.atol), backend.precision)
    for name, extra in precisions.items():
        rows += verification_rows(results, name, precision_tolerance(cfg, extra.precision),
                                  extra.precision)
    comparison = None
    if plan.compare is not None:
        comparison = BackendComparison.from_results(
            results, [PYTORCH, *compared], cfg.verify.atol,
            cfg.verify.get('cross_backend_atol', DEFAULT_CROSS_BACKEND_ATOL))
    image_paths = write_demo_images(backend, plan)
    result = DeployResult(onnx_path, plan.work_dir / REPORT_FILE, image_paths, rows,
                          comparison, nodes)
    write_report(plan, result, export_seconds)
    return result


def summary(rows: List[VerificationRow]) -> Dict[str, Dict[str, Any]]:
    """Per precision: cases, failures, the worst difference and the tolerance, for the closing
    log line (a reduced precision has its own tolerance)."""
    stats: Dict[str, Dict[str, Any]] = {}
    for row in rows:
        entry = stats.setdefault(row.precision, {'cases': 0, 'failed': 0, 'max_abs_diff': None,
                                                 'atol': row.tolerance.atol})
        entry['cases'] += 1
        entry['failed'] += not row.passed
        if row.max_abs_diff is not None:
            entry['max_abs_diff'] = max(entry['max_abs_diff'] or 0.0, row.max_abs_diff)
    return stats
