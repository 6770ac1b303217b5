"""``torch2onnx``: export a model with a dynamic upscale factor, check it, write it atomically.

The export runs inside :func:`~mmdeploy_srcnn.apis.rewrites.deploy_context`, so
``F.interpolate`` with a Tensor factor becomes an ONNX ``Resize`` (or the matmul resize) whose
scales come from the ``factor`` input. Patching is process-global; the context's lock
serialises concurrent exports.
"""
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np
import onnx
import torch
from mmengine.config import Config
from torch import Tensor, nn

import mmdeploy_srcnn
from mmdeploy_srcnn.apis.rewrites import deploy_context
from mmdeploy_srcnn.core import RewriterContext, patch_model
from mmdeploy_srcnn.utils.fileio import atomic_path
from mmdeploy_srcnn.utils.model_meta import ModelConvention

_EXAMPLE_SIZE = (24, 32)  # small, unequal, and != 1 so no axis gets specialised
_EXAMPLE_BATCH = 2
_EXAMPLE_SCALE = (2.0, 3.0)


class ExportError(RuntimeError):
    """The exporter failed or produced a model that does not pass the checks."""


# Model attribute -> ModelConvention field: what a model declares about itself.
_DECLARED = {'color_order': 'color_order', 'value_range': 'value_range',
             'receptive_radius': 'halo', 'input_receptive_radius': 'input_halo'}


def declared_convention(model: nn.Module) -> Dict[str, Any]:
    """The :class:`ModelConvention` fields a model declares about itself: colour order, value
    range and receptive radii (how much tiles overlap, after and before the resize), from its
    ``color_order``, ``value_range``, ``receptive_radius`` and ``input_receptive_radius``
    attributes. What a model does not declare is left to SRCNN's value, with a warning naming
    it: a wrong guess would make the app feed or tile it wrongly."""
    declared = {field: getattr(model, attribute) for attribute, field in _DECLARED.items()
                if getattr(model, attribute, None) is not None}
    missing = [attribute for attribute, field in _DECLARED.items() if field not in declared]
    if missing:
        defaults = ', '.join(f'{attribute}={getattr(ModelConvention, _DECLARED[attribute])!r}'
                             for attribute in missing)
        warnings.warn(f'{type(model).__name__} does not declare {", ".join(missing)}: the '
                      f'metadata says {defaults} (SRCNN\'s), which the app uses to feed the '
                      'model and to overlap tiles')
    if 'value_range' in declared:
        declared['value_range'] = tuple(float(v) for v in declared['value_range'])
    return declared


def model_convention(deploy_cfg: Config, model: nn.Module) -> ModelConvention:
    """The I/O contract the export records: names and factor layout from the config, the rest
    as the model declares it (:func:`declared_convention`)."""
    onnx_cfg = deploy_cfg.onnx_config
    try:
        return ModelConvention(image_input=onnx_cfg.input_names[0],
                               factor_input=onnx_cfg.input_names[1],
                               output=onnx_cfg.output_names[0],
                               factor_format=onnx_cfg.factor_format,
                               **declared_convention(model))
    except ValueError as err:
        raise ExportError(f'{type(model).__name__} declares a bad I/O convention: {err}') \
            from None


def example_inputs(convention: ModelConvention) -> Tuple[Tensor, Tensor]:
    """An image batch and a factor tensor in the model's format, to trace the model with."""
    image = np.random.default_rng(0).random((_EXAMPLE_BATCH, 3, *_EXAMPLE_SIZE),
                                            dtype=np.float32)
    inputs = convention.model_inputs(image, _EXAMPLE_SCALE)
    return (torch.from_numpy(inputs[convention.image_input]),
            torch.from_numpy(inputs[convention.factor_input]))


def _export_torchscript(model: nn.Module, args: Tuple[Tensor, Tensor], path: Path,
                        onnx_cfg: Any, ctx: RewriterContext) -> None:
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


def _dynamic_shapes(onnx_cfg: Any) -> Tuple[Optional[Dict[int, Any]], ...]:
    """The config's ``dynamic_axes`` of each input as ``torch.export.Dim`` objects."""
    dims: Dict[str, Any] = {}
    shapes = []
    for name in onnx_cfg.input_names:
        axes = onnx_cfg.dynamic_axes.get(name)
        if not axes:
            shapes.append(None)
            continue
        shapes.append({axis: dims.setdefault(label, torch.export.Dim(label))
                       for axis, label in axes.items()})
    return tuple(shapes)


def _export_dynamo(model: nn.Module, args: Tuple[Tensor, Tensor], path: Path,
                   onnx_cfg: Any, ctx: RewriterContext) -> None:
    exporter_log = logging.getLogger('torch.onnx._internal.exporter._registration')
    previous_level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" is not our concern
    try:
        with warnings.catch_warnings():
            # torch-internal pytree deprecation noise, not actionable by a user of this tool.
            warnings.filterwarnings('ignore', category=FutureWarning, module='copyreg')
            program = torch.onnx.export(
                model, args, None, dynamo=True, opset_version=onnx_cfg.opset_version,
                input_names=list(onnx_cfg.input_names),
                output_names=list(onnx_cfg.output_names),
                dynamic_shapes=_dynamic_shapes(onnx_cfg),
                custom_translation_table=ctx.dynamo_translation_table(),
                external_data=False, optimize=True, verbose=False)
    finally:
        exporter_log.setLevel(previous_level)
    opset = next(o.version for o in program.model_proto.opset_import if o.domain in ('', 'ai.onnx'))
    if opset != onnx_cfg.opset_version:
        raise ExportError(f'the dynamo exporter produced opset {opset} instead of the '
                          f'requested {onnx_cfg.opset_version}')
    program.save(str(path), external_data=False)


Exporter = Callable[[nn.Module, Tuple[Tensor, Tensor], Path, Any, RewriterContext], None]
_EXPORTERS: Dict[str, Exporter] = {
    'torchscript': _export_torchscript,
    'dynamo': _export_dynamo,
}


def _label_dynamic_axes(proto: onnx.ModelProto, onnx_cfg: Any) -> None:
    """Name dynamic axes as the config says (the dynamo exporter calls outputs u0, u1 ...)."""
    values = {value.name: value for value in [*proto.graph.input, *proto.graph.output]}
    for name, axes in onnx_cfg.dynamic_axes.items():
        dims = values[name].type.tensor_type.shape.dim
        for axis, label in axes.items():
            dims[axis].dim_param = label


def _finalize(path: Path, deploy_cfg: Config, model: nn.Module,
              convention: ModelConvention, extra_metadata: Mapping[str, str]) -> None:
    """Simplify, add metadata, run the checker and strict shape inference, save in place.

    The TorchScript exporter leaves every constant as a ``Constant`` node and keeps shape
    arithmetic that is constant; onnxscript's optimizer (what the dynamo exporter runs too)
    folds them, so both exporters give a graph of the same size (the default model: 108 ->
    81 nodes with the TorchScript exporter, outputs unchanged). Verification runs on the file
    as written.
    """
    import onnxscript.optimizer

    onnx_cfg = deploy_cfg.onnx_config
    proto = onnxscript.optimizer.optimize(onnx.load(str(path)))
    metadata = {**convention.to_metadata(),
                'mmdeploy_srcnn.model_name': type(model).__name__,
                'mmdeploy_srcnn.version': mmdeploy_srcnn.__version__,
                'mmdeploy_srcnn.exporter': onnx_cfg.exporter,
                'mmdeploy_srcnn.resize': 'matmul' if onnx_cfg.matmul_resize else 'Resize',
                'mmdeploy_srcnn.torch_version': torch.__version__, **extra_metadata}
    _label_dynamic_axes(proto, onnx_cfg)
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for key, value in [*kept, *metadata.items()]:
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto, full_check=True)
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f'the exported model fails the ONNX checks: {err}') from err
    onnx.save(proto, str(path))


def _root_cause(err: BaseException) -> str:
    """The innermost cause, in one line: the exporters wrap the real error in their own."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[0] if lines else ""}'


def torch2onnx(model: nn.Module, deploy_cfg: Config, work_dir: Path,
               extra_metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Export ``model`` as configured by ``deploy_cfg.onnx_config`` into ``work_dir``;
    ``extra_metadata`` is added to the file's ``metadata_props``.

    ``deploy_cfg`` must have been validated (:func:`~mmdeploy_srcnn.apis.config.
    load_deploy_config` does it). Returns the path of the written ``.onnx``. The file appears
    only once it has been exported, checked and annotated; on any failure the previous file
    (if any) is left untouched.
    """
    onnx_cfg = deploy_cfg.onnx_config
    exporter = _EXPORTERS.get(onnx_cfg.exporter)
    if exporter is None:
        raise ExportError(f'exporter {onnx_cfg.exporter!r} is not available '
                          f'(choose from {", ".join(_EXPORTERS)})')
    save_path = Path(work_dir) / onnx_cfg.save_file
    convention = model_convention(deploy_cfg, model)
    args = example_inputs(convention)
    model.eval()
    # Module rewrites replace submodules of a copy; the caller's model is never changed.
    patched = patch_model(model, deploy_cfg, backend=deploy_cfg.backend_config.type, ir='onnx')
    with atomic_path(save_path) as tmp_path:
        with deploy_context(deploy_cfg, opset=onnx_cfg.opset_version) as ctx, torch.no_grad():
            try:
                exporter(patched, args, tmp_path, onnx_cfg, ctx)
            except Exception as err:
                raise ExportError(f'{onnx_cfg.exporter} export failed: {_root_cause(err)}') \
                    from err
        _finalize(tmp_path, deploy_cfg, model, convention, dict(extra_metadata or {}))
    return save_path
