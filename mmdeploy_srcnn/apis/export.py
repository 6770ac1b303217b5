"""``torch2onnx``: export a model with a dynamic upscale factor, check it, write it atomically.

The export runs inside a :class:`~mmdeploy_srcnn.core.RewriterContext`, so ``F.interpolate``
with a Tensor factor becomes an ONNX ``Resize`` whose ``scales`` come from the ``factor`` input.
Patching is process-global; the context's lock serialises concurrent exports.
"""
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import onnx
import torch
from mmengine.config import Config
from torch import Tensor, nn

import mmdeploy_srcnn
import mmdeploy_srcnn.pytorch  # noqa: F401  (registers the shipped rewriters)
from mmdeploy_srcnn.core import RewriterContext
from mmdeploy_srcnn.utils.config import validate_deploy_config
from mmdeploy_srcnn.utils.fileio import atomic_path
from mmdeploy_srcnn.utils.model_meta import ModelConvention

_EXAMPLE_SIZE = (24, 32)  # small, unequal, and != 1 so no axis gets specialised
_EXAMPLE_BATCH = 2
_EXAMPLE_SCALE = (2.0, 3.0)


class ExportError(RuntimeError):
    """The exporter failed or produced a model that does not pass the checks."""


def example_inputs(onnx_cfg: Any) -> Tuple[Tensor, Tensor]:
    """An image batch and a factor tensor in the config's format, to trace the model with."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(_EXAMPLE_BATCH, 3, *_EXAMPLE_SIZE, generator=generator)
    factor = make_factor(_EXAMPLE_SCALE, onnx_cfg.factor_format)
    return image, factor


def make_factor(scale: Tuple[float, float], factor_format: str) -> Tensor:
    """The ``factor`` input for ``(scale_h, scale_w)`` in the ``'hw'`` or ``'nchw'`` format."""
    values = list(scale) if factor_format == 'hw' else [1.0, 1.0, *scale]
    return torch.tensor(values, dtype=torch.float32)


def _export_torchscript(model: nn.Module, args: Tuple[Tensor, Tensor], path: Path,
                        onnx_cfg: Any) -> None:
    with warnings.catch_warnings():
        # We chose this exporter explicitly in the config; torch's deprecation notice is noise.
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=FutureWarning)
        torch.onnx.export(model, args, str(path), dynamo=False,
                          opset_version=onnx_cfg.opset_version,
                          input_names=list(onnx_cfg.input_names),
                          output_names=list(onnx_cfg.output_names),
                          dynamic_axes={name: dict(axes)
                                        for name, axes in onnx_cfg.dynamic_axes.items()},
                          do_constant_folding=True)


_EXPORTERS: Dict[str, Callable[[nn.Module, Tuple[Tensor, Tensor], Path, Any], None]] = {
    'torchscript': _export_torchscript,
}


def _finalize(path: Path, deploy_cfg: Config, model: nn.Module) -> None:
    """Add metadata, run the checker and strict shape inference, save in place."""
    onnx_cfg = deploy_cfg.onnx_config
    proto = onnx.load(str(path))
    convention = ModelConvention(image_input=onnx_cfg.input_names[0],
                                 factor_input=onnx_cfg.input_names[1],
                                 output=onnx_cfg.output_names[0],
                                 factor_format=onnx_cfg.factor_format)
    metadata = {**convention.to_metadata(),
                'mmdeploy_srcnn.model_name': type(model).__name__,
                'mmdeploy_srcnn.version': mmdeploy_srcnn.__version__,
                'mmdeploy_srcnn.exporter': onnx_cfg.exporter,
                'mmdeploy_srcnn.torch_version': torch.__version__}
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto, full_check=True)
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f'the exported model fails the ONNX checks: {err}') from err
    onnx.save(proto, str(path))


def torch2onnx(model: nn.Module, deploy_cfg: Config, work_dir: Path) -> Path:
    """Export ``model`` as configured by ``deploy_cfg.onnx_config`` into ``work_dir``.

    Returns the path of the written ``.onnx``. The file appears only once it has been exported,
    checked and annotated; on any failure the previous file (if any) is left untouched.
    """
    validate_deploy_config(deploy_cfg)
    onnx_cfg = deploy_cfg.onnx_config
    exporter = _EXPORTERS.get(onnx_cfg.exporter)
    if exporter is None:
        raise ExportError(f'exporter {onnx_cfg.exporter!r} is not available '
                          f'(choose from {", ".join(_EXPORTERS)})')
    save_path = Path(work_dir) / onnx_cfg.save_file
    args = example_inputs(onnx_cfg)
    model.eval()
    with atomic_path(save_path) as tmp_path:
        with RewriterContext(deploy_cfg, backend=deploy_cfg.backend_config.type, ir='onnx'), \
                torch.no_grad():
            try:
                exporter(model, args, tmp_path, onnx_cfg)
            except Exception as err:
                raise ExportError(f'{onnx_cfg.exporter} export failed: '
                                  f'{str(err).strip().splitlines()[0]}') from err
        _finalize(tmp_path, deploy_cfg, model)
    return save_path
