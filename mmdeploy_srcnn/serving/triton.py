"""A Triton Inference Server model repository for an exported dynamic-factor ``.onnx``.

:func:`write_model_repository` writes ``DIR/NAME/config.pbtxt`` and ``DIR/NAME/1/model.onnx``
(a byte-for-byte copy) for Triton's ``onnxruntime`` backend or its ``openvino`` backend, which
both run the ``.onnx`` as it is. Names, data types and dims come from the file itself: its
graph inputs and outputs, checked against the :class:`ModelConvention` in its metadata.

Batching. With ``max_batch_size`` > 0 Triton treats the first dimension of *every* input and
output as the batch dimension, leaves it out of ``dims``, and its dynamic batcher concatenates
requests along it. The model's ``factor`` input is one factor for the whole call, shape ``[2]``
(or ``[1, 1, h, w]``): it has no batch dimension, and ONNX ``Resize`` takes one scale vector
per run, so two requests with their own factors cannot become one model run. A batching
config would describe ``factor`` as ``[B, 2]``, which the model does not accept, and Triton's
ONNX Runtime backend refuses such a config when it loads it ("model does not support batching
while non-zero max_batch_size is specified": it allows batching only when every input and
output has a variable first dimension). Requests also differ in height and width, which the
dynamic batcher cannot concatenate. So the repository uses ``max_batch_size: 0``: ``dims`` are
the full shapes, ``[-1, 3, -1, -1]`` for the image (a client sends N images of one size and one
factor in one request, which the model runs as one batch) and ``[2]`` for the factor, and
there is no ``dynamic_batching`` section, which needs ``max_batch_size`` >= 1. A
``max_batch_size`` > 0 is refused here with the input that prevents it. Concurrency comes from
model instances instead (``instance_group`` count): each runs its own requests.

The ``openvino`` variant is written only when asked for with ``accept_openvino_factor_bug``:
OpenVINO 2026.4 (CPU) reads a non-constant ``Resize`` scale only when an input *shape* changes,
so a request that changes only the factor (same image size) reuses the previous factor's
weights (max |diff| 0.32 at x3.01 after x3 on a 40x40 image, measured against ONNX Runtime).
This project's OpenVINO backend works around it; Triton's runs the engine as it is. It is safe
when every request of one image size uses one factor. It also runs at OpenVINO's default
inference precision: bfloat16 on CPUs that have it (max |diff| 1.5e-2 from f32, 53 dB on noise
in [0, 1]); Triton's OpenVINO backend offers a bf16 hint but no f32 one.

Files are written atomically (a reader sees no file or the complete one); existing files are
refused unless ``overwrite``, and nothing is written outside ``DIR``.
"""
import dataclasses
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

from mmdeploy_srcnn.backends.model_file import external_locations
from mmdeploy_srcnn.utils.fileio import PathLike, atomic_write, printable
from mmdeploy_srcnn.utils.model_meta import ModelConvention

BACKENDS = ('onnxruntime', 'openvino')
VERSION = '1'
CONFIG_NAME = 'config.pbtxt'
MODEL_FILE = 'model.onnx'
_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}')
_CHUNK = 1 << 20
# ONNX TensorProto element type -> Triton data type (model_config.proto DataType).
_DATA_TYPES = {1: 'TYPE_FP32', 2: 'TYPE_UINT8', 3: 'TYPE_INT8', 4: 'TYPE_UINT16',
               5: 'TYPE_INT16', 6: 'TYPE_INT32', 7: 'TYPE_INT64', 9: 'TYPE_BOOL',
               10: 'TYPE_FP16', 11: 'TYPE_FP64', 12: 'TYPE_UINT32', 13: 'TYPE_UINT64',
               16: 'TYPE_BF16'}


class TritonRepositoryError(ValueError):
    """A model or a request that cannot become a correct Triton repository; one line."""


@dataclasses.dataclass(frozen=True)
class Tensor:
    """An input or output as Triton's model configuration describes it."""

    name: str
    data_type: str
    dims: Tuple[int, ...]


def _tensor(value: Any, what: str, path: Path) -> Tensor:
    tensor_type = value.type.tensor_type
    name = printable(value.name)
    if not value.type.HasField('tensor_type') or not tensor_type.HasField('shape'):
        raise TritonRepositoryError(f'{printable(path)}: {what} {name!r} has no tensor shape in '
                                    'the model; Triton needs its rank')
    if tensor_type.elem_type not in _DATA_TYPES:
        raise TritonRepositoryError(f'{printable(path)}: {what} {name!r} has ONNX element type '
                                    f'{tensor_type.elem_type}, which Triton cannot serve')
    dims = tuple(dim.dim_value if dim.HasField('dim_value') else -1
                 for dim in tensor_type.shape.dim)
    if not dims:
        raise TritonRepositoryError(f'{printable(path)}: {what} {name!r} is a scalar; Triton '
                                    'needs a rank of at least 1')
    return Tensor(value.name, _DATA_TYPES[tensor_type.elem_type], dims)


def read_model_io(onnx_path: Path) -> Tuple[List[Tensor], List[Tensor]]:
    """The graph inputs and outputs of a dynamic-factor model, as Triton tensors.

    Raises:
        TritonRepositoryError: not a readable ONNX model, weights in external files (the
            repository holds one file), or inputs and outputs other than the model's
            convention names (an image input, a factor input, an image output).
    """
    import onnx  # imported on use: importing onnx costs about a second

    name = printable(onnx_path)
    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except (OSError, ValueError) as err:
        raise TritonRepositoryError(f'{name}: not a readable ONNX model ({err})') from None
    except Exception as err:  # protobuf's DecodeError and others
        raise TritonRepositoryError(f'{name}: not a readable ONNX model '
                                    f'({type(err).__name__})') from None
    if next(external_locations(proto), None) is not None:
        raise TritonRepositoryError(f'{name}: keeps weights in external data files; a Triton '
                                    'repository version holds one model.onnx (save the model '
                                    'with its weights inside)')
    try:
        convention = ModelConvention.from_metadata(
            {prop.key: prop.value for prop in proto.metadata_props})
    except ValueError as err:
        raise TritonRepositoryError(f'{name}: {err}') from None
    initializers = {tensor.name for tensor in proto.graph.initializer}
    inputs = [_tensor(value, 'input', onnx_path) for value in proto.graph.input
              if value.name not in initializers]
    outputs = [_tensor(value, 'output', onnx_path) for value in proto.graph.output]
    expected = {convention.image_input, convention.factor_input}
    if {tensor.name for tensor in inputs} != expected \
            or convention.output not in {tensor.name for tensor in outputs}:
        raise TritonRepositoryError(
            f'{name}: not a dynamic-factor model: it takes {[t.name for t in inputs]} and gives '
            f'{[t.name for t in outputs]}, expected inputs {sorted(expected)} and output '
            f'{convention.output!r}')
    return inputs, outputs


def _unbatchable(tensors: List[Tensor]) -> List[str]:
    """Tensors without a variable first dimension: Triton cannot batch along it."""
    return [f'{tensor.name!r} has shape {list(tensor.dims)}' for tensor in tensors
            if tensor.dims[0] != -1]


def _quoted(text: str) -> str:
    """A protobuf text-format string literal."""
    escaped = ''.join(f'\\{char}' if char in '"\\' else
                      f'\\{ord(char):03o}' if ord(char) < 0x20 or ord(char) == 0x7f else char
                      for char in text)
    return f'"{escaped}"'


def _tensor_text(tensor: Tensor) -> str:
    return (f'  {{\n    name: {_quoted(tensor.name)}\n    data_type: {tensor.data_type}\n'
            f'    dims: [ {", ".join(str(dim) for dim in tensor.dims)} ]\n  }}')


def config_text(name: str, backend: str, inputs: List[Tensor], outputs: List[Tensor],
                instances: int = 1) -> str:
    """The ``config.pbtxt`` of the model (see the module docstring for its batching)."""
    if backend not in BACKENDS:
        raise TritonRepositoryError(f'unknown Triton backend {backend!r} (choose from '
                                    f'{", ".join(BACKENDS)})')
    lines = [f'name: {_quoted(name)}']
    if backend == 'onnxruntime':
        lines += ['platform: "onnxruntime_onnx"', 'backend: "onnxruntime"']
    else:
        lines = ['# OpenVINO 2026.4 reuses the previous factor when a request changes only the',
                 '# factor (same image size): every request of one size must use one factor.',
                 *lines, 'backend: "openvino"', f'default_model_filename: {_quoted(MODEL_FILE)}']
    lines += ['max_batch_size: 0',
              'input [\n' + ',\n'.join(_tensor_text(tensor) for tensor in inputs) + '\n]',
              'output [\n' + ',\n'.join(_tensor_text(tensor) for tensor in outputs) + '\n]',
              f'instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]']
    return '\n'.join(lines) + '\n'


def _inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root`` (following any links), else an error."""
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise TritonRepositoryError(f'{printable(path)}: resolves to {printable(resolved)}, '
                                    f'outside the repository {printable(root)}; refused')
    return path


def _copy(source: Path, destination: Path, overwrite: bool) -> None:
    with open(source, 'rb') as reader, atomic_write(destination, overwrite=overwrite) as writer:
        for chunk in iter(lambda: reader.read(_CHUNK), b''):
            writer.write(chunk)


def write_model_repository(onnx_path: PathLike, repository: PathLike, name: str = 'srcnn',
                           backend: str = 'onnxruntime', max_batch_size: int = 0,
                           instances: int = 1, overwrite: bool = False,
                           accept_openvino_factor_bug: bool = False) -> Dict[str, Path]:
    """Write ``repository/name/config.pbtxt`` and ``repository/name/1/model.onnx``.

    Returns the written paths (``'config'``, ``'model'``).

    Raises:
        TritonRepositoryError: a bad name, backend or count, ``max_batch_size`` > 0 (see the
            module docstring), ``openvino`` without ``accept_openvino_factor_bug``, a model
            that is not a dynamic-factor ``.onnx``, an existing file without ``overwrite``, a
            ``repository`` that cannot be a folder, or a path that leads outside it.
    """
    onnx_path, root = Path(onnx_path), Path(repository)
    if not _NAME.fullmatch(name):
        raise TritonRepositoryError(f'model name {printable(name)!r}: use 1-128 letters, digits, '
                                    "'_', '.' or '-', not starting with '.' or '-' (it is a "
                                    'folder of the repository)')
    if backend not in BACKENDS:
        raise TritonRepositoryError(f'unknown Triton backend {printable(backend)!r} (choose '
                                    f'from {", ".join(BACKENDS)})')
    if instances < 1 or max_batch_size < 0:
        raise TritonRepositoryError(f'instances must be >= 1 and max_batch_size >= 0, got '
                                    f'{instances} and {max_batch_size}')
    if backend == 'openvino' and not accept_openvino_factor_bug:
        raise TritonRepositoryError(
            "Triton's openvino backend runs OpenVINO as it is, and OpenVINO 2026.4 reuses the "
            'previous factor when a request changes only the factor (same image size), so such '
            'requests would get wrong pixels; serve with the onnxruntime backend, or accept it '
            '(every request of one size uses one factor) with --accept-openvino-factor-bug')
    inputs, outputs = read_model_io(onnx_path)
    if max_batch_size > 0:
        reasons = _unbatchable(inputs + outputs)
        raise TritonRepositoryError(
            f'{printable(onnx_path)}: Triton cannot batch requests of this model ('
            f'{"; ".join(reasons) or "each request carries its own factor"}: no batch '
            'dimension, one factor per model run); use max_batch_size 0, with which a request '
            'still carries N images of one size')
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TritonRepositoryError(f'{printable(root)}: cannot be the repository folder '
                                    f'({err.strerror})') from None
    root = root.resolve()
    model_dir = _inside(root, root / name)
    version_dir = _inside(root, model_dir / VERSION)
    targets = {'config': model_dir / CONFIG_NAME, 'model': version_dir / MODEL_FILE}
    for target in targets.values():
        _inside(root, target)
        if not overwrite and (target.exists() or target.is_symlink()):
            raise TritonRepositoryError(f'{printable(target)}: exists (pass --overwrite to '
                                        'replace it)')
    version_dir.mkdir(parents=True, exist_ok=True)
    text = config_text(name, backend, inputs, outputs, instances)
    try:
        _copy(onnx_path, targets['model'], overwrite)
        with atomic_write(targets['config'], 'w', overwrite=overwrite) as file:
            file.write(text)
    except FileExistsError as err:  # appeared meanwhile; the atomic publish kept it
        raise TritonRepositoryError(f'{printable(err.filename or "")}: exists, not replaced '
                                    '(it appeared while the repository was written)') from None
    except OSError as err:
        raise TritonRepositoryError(f'{printable(err.filename or root)}: cannot write '
                                    f'({printable(err.strerror or str(err))})') from None
    return targets
