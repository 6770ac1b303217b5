"""The deploy pipeline behind ``tools/deploy.py``: export, check, verify, demo images, report."""
import dataclasses
import inspect
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import onnx
import onnxruntime
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

import mmdeploy_srcnn
from mmdeploy_srcnn.apis.export import make_factor, torch2onnx
from mmdeploy_srcnn.apis.verify import (BackendComparison, VerificationRow, compare_backends,
                                        run_backend, verify_backend)
from mmdeploy_srcnn.backends import BackendError, BaseBackend, backend_class, build_backend
from mmdeploy_srcnn.registry import BACKENDS, MODELS
from mmdeploy_srcnn.models import build_model
from mmdeploy_srcnn.ops import dynamic_resize
from mmdeploy_srcnn.utils.config import ConfigError
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale
from mmdeploy_srcnn.utils.fileio import atomic_write
from mmdeploy_srcnn.utils.image import from_float, read_image, to_float, write_image


@dataclasses.dataclass
class DeployResult:
    """What a deploy run produced."""

    onnx_path: Path
    report_path: Path
    image_paths: List[Path]
    rows: List[VerificationRow]
    comparison: Optional[BackendComparison] = None

    @property
    def passed(self) -> bool:
        return (all(row.passed for row in self.rows)
                and (self.comparison is None or self.comparison.passed))


def scale_label(scale: Any) -> str:
    """``x2.5`` for a uniform scale, ``x2x3`` for (height, width) = (2, 3)."""
    return f'x{format_scale(scale)}'


def check_backend_config(backend_config: Mapping[str, Any]) -> None:
    """Fail early on an unknown backend type or option name (before exporting anything)."""
    options = dict(backend_config)
    backend_cls = backend_class(options.pop('type', None))
    try:
        inspect.signature(backend_cls).bind('model.onnx', **options)
    except TypeError as err:
        raise BackendError(f'backend_config for {backend_config["type"]}: {err}') from err


def load_model(deploy_cfg: Config, checkpoint: Optional[str],
               logger: MMLogger) -> torch.nn.Module:
    """Build the configured model; a missing checkpoint is a loud warning, not a crash."""
    model_type = deploy_cfg.model.type
    if model_type not in MODELS.module_dict:
        raise ConfigError(f'model.type: unknown model {model_type!r} '
                          f'(registered: {", ".join(sorted(MODELS.module_dict))})')
    if checkpoint is None:
        logger.warning('no checkpoint configured: exporting a randomly initialised model')
        return build_model(deploy_cfg.model)
    if not Path(checkpoint).is_file():
        logger.warning(f'checkpoint {checkpoint} not found: exporting a RANDOMLY INITIALISED '
                       'model, its outputs are not super-resolved images')
        return build_model(deploy_cfg.model)
    return build_model(deploy_cfg.model, checkpoint)


def read_rgb_batch(image_path: Path) -> np.ndarray:
    """The image as a float32 NCHW RGB batch of one in [0, 1] (gray is replicated)."""
    image = read_image(image_path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(to_float(image[..., :3]).transpose(2, 0, 1)[None])


def _resize(batch: np.ndarray, scale: Any, mode: str) -> np.ndarray:
    factor = make_factor(parse_scale(scale), 'hw')
    with torch.no_grad():
        return dynamic_resize(torch.from_numpy(batch), factor, mode).numpy()


def write_demo_images(backend: BaseBackend, deploy_cfg: Config, batch: np.ndarray, stem: str,
                      out_dir: Path) -> List[Path]:
    """For each verification scale: input (nearest) | bicubic | model, side by side."""
    written = []
    for scale in deploy_cfg.verify.scales:
        model_out = run_backend(backend, batch, parse_scale(scale), deploy_cfg)
        panels = [_resize(batch, scale, 'nearest'), _resize(batch, scale, 'bicubic'), model_out]
        side_by_side = np.concatenate([np.clip(p[0], 0, 1).transpose(1, 2, 0) for p in panels],
                                      axis=1)
        path = out_dir / f'{stem}_{scale_label(scale)}.png'
        write_image(path, from_float(side_by_side, np.uint8))
        written.append(path)
    return written


def build_comparison_backends(deploy_cfg: Config, onnx_path: Path, names: List[str],
                              main_backend: BaseBackend, logger: MMLogger
                              ) -> Dict[str, BaseBackend]:
    """Backends to compare: ``names``, or every registered one when ``names`` is empty.

    Named backends must build; of "every registered one", those whose package is missing are
    skipped with a warning that says so.
    """
    requested = names or sorted(BACKENDS.module_dict)
    backends: Dict[str, BaseBackend] = {}
    for name in requested:
        if name == deploy_cfg.backend_config.type:
            backends[name] = main_backend
            continue
        try:
            backends[name] = build_backend(dict(type=name), onnx_path)
        except BackendError as err:
            if names:
                raise
            logger.warning(f'backend {name} skipped in the comparison: {err}')
    return backends


def run_deploy(deploy_cfg: Config, work_dir: Path, image_path: Path,
               checkpoint: Optional[str], logger: MMLogger,
               compare: Optional[List[str]] = None) -> DeployResult:
    """Export, check, verify against PyTorch on the backend, write demo images and a report.

    ``compare``: also run these backends (``[]``: every available one) on the same inputs and
    record their pairwise agreement.
    """
    # Bad input fails here, before anything is written.
    demo_batch = read_rgb_batch(image_path)
    check_backend_config(deploy_cfg.backend_config)
    model = load_model(deploy_cfg, checkpoint, logger)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    onnx_path = torch2onnx(model, deploy_cfg, work_dir)
    export_seconds = time.perf_counter() - start
    proto = onnx.load(str(onnx_path))
    nodes = [node.op_type for node in proto.graph.node]
    logger.info(f'exported {onnx_path} with the {deploy_cfg.onnx_config.exporter} exporter in '
                f'{export_seconds:.1f} s: {len(nodes)} nodes ({", ".join(nodes)})')

    backend = build_backend(deploy_cfg.backend_config, onnx_path)
    rows = verify_backend(model, backend, deploy_cfg)
    comparison = None
    if compare is not None:
        backends = build_comparison_backends(deploy_cfg, onnx_path, compare, backend, logger)
        comparison = compare_backends(model, backends, deploy_cfg)
    image_paths = write_demo_images(backend, deploy_cfg, demo_batch, image_path.stem,
                                    work_dir / 'images')

    report = {
        'config': deploy_cfg.filename,
        'onnx': str(onnx_path),
        'checkpoint': checkpoint if checkpoint and Path(checkpoint).is_file() else None,
        'exporter': deploy_cfg.onnx_config.exporter,
        'opset': deploy_cfg.onnx_config.opset_version,
        'export_seconds': round(export_seconds, 3),
        'nodes': nodes,
        'backend': deploy_cfg.backend_config.type,
        'versions': {'mmdeploy_srcnn': mmdeploy_srcnn.__version__, 'torch': torch.__version__,
                     'onnx': onnx.__version__, 'onnxruntime': onnxruntime.__version__},
        'demo_image': str(image_path),
        'images': [str(path) for path in image_paths],
        'verification': [row.as_dict() for row in rows],
        'backend_comparison': comparison.as_dict() if comparison else None,
    }
    result = DeployResult(onnx_path, work_dir / 'report.json', image_paths, rows, comparison)
    report['passed'] = result.passed
    with atomic_write(result.report_path, 'w') as file:
        json.dump(report, file, indent=2)
    return result


def format_table(rows: List[VerificationRow]) -> str:
    """A short text table of the verification matrix."""
    header = f'{"batch":>5} {"input":>9} {"scale":>9} {"output":>16} {"max|diff|":>10}  result'
    lines = [header, '-' * len(header)]
    for row in rows:
        diff = 'shape!' if row.max_abs_diff is None else f'{row.max_abs_diff:.2e}'
        scale = scale_label(row.scale)
        lines.append(f'{row.batch:>5} {row.in_size[0]:>4}x{row.in_size[1]:<4} {scale:>9} '
                     f'{"x".join(map(str, row.backend_shape)):>16} {diff:>10}  '
                     f'{"ok" if row.passed else "FAIL"}')
    return '\n'.join(lines)


def summary(rows: List[VerificationRow]) -> Dict[str, Any]:
    """Counts and the worst difference, for the closing log line."""
    diffs = [row.max_abs_diff for row in rows if row.max_abs_diff is not None]
    return {'cases': len(rows), 'failed': sum(not row.passed for row in rows),
            'max_abs_diff': max(diffs) if diffs else None}
