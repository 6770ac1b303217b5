"""An ``.onnx`` file is data from somewhere else: what is checked before an engine loads it.

ONNX tensors may keep their bytes in *external data* files named by a relative ``location``.
Every engine resolves that name against the model's folder and reads the file, whatever it is:
a model saved next to ``~/.ssh/id_rsa`` can name it as a weight, and its bytes then flow into
the output pixels. External data is therefore refused unless asked for, and then only as
regular files inside the model's folder, reached without symbolic links. The rule holds
wherever a tensor can sit in a ModelProto: initializers (dense and sparse), every node attribute
(tensors, sparse tensors, subgraphs, recursively), model-local function bodies and their default
attributes, and the training graphs.
"""
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Tuple

from .base import BackendError, first_line


def _attribute_tensors(attribute: Any) -> Iterator[Any]:
    """Every tensor an attribute holds, by field present rather than by declared ``type``:
    a crafted file may set a field its ``type`` does not announce, and a reader may use it."""
    if attribute.HasField('t'):
        yield attribute.t
    yield from attribute.tensors
    sparse_tensors = list(attribute.sparse_tensors)
    if attribute.HasField('sparse_tensor'):
        sparse_tensors.append(attribute.sparse_tensor)
    for sparse in sparse_tensors:
        yield sparse.values
        yield sparse.indices
    if attribute.HasField('g'):
        yield from _graph_tensors(attribute.g)
    for subgraph in attribute.graphs:
        yield from _graph_tensors(subgraph)


def _node_tensors(nodes: Iterable[Any]) -> Iterator[Any]:
    for node in nodes:
        for attribute in node.attribute:
            yield from _attribute_tensors(attribute)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor stored in ``graph`` and its subgraphs (initializers, attribute values)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _model_tensors(proto: Any) -> Iterator[Tuple[str, Any]]:
    """``(where, tensor)`` for every TensorProto in a ModelProto: the main graph, the bodies and
    default attributes of model-local functions, and the training graphs."""
    for tensor in _graph_tensors(proto.graph):
        yield '', tensor
    for function in proto.functions:
        where = f' in function {function.domain + "." + function.name!r}'
        for tensor in _node_tensors(function.node):
            yield where, tensor
        for attribute in function.attribute_proto:
            for tensor in _attribute_tensors(attribute):
                yield where, tensor
    for training in proto.training_info:
        for graph in (training.initialization, training.algorithm):
            for tensor in _graph_tensors(graph):
                yield ' in training_info', tensor


def external_locations(proto: Any) -> Iterator[Tuple[str, str]]:
    """``(tensor description, location)`` of every tensor whose bytes live in another file."""
    import onnx

    for where, tensor in _model_tensors(proto):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            yield f'{tensor.name!r}{where}', entries.get('location', '')


def _check_location(model_dir: Path, tensor: str, location: str) -> None:
    """A location must name a regular file inside ``model_dir``, with no link on the way."""
    relative = Path(location)
    if not location or relative.is_absolute() or '..' in relative.parts:
        raise BackendError(f'external data of tensor {tensor} is {location!r}: only files '
                           'inside the model folder are allowed')
    path = model_dir
    for part in relative.parts:
        path = path / part
        if path.is_symlink():
            raise BackendError(f'external data of tensor {tensor}: {location!r} goes '
                               'through a symbolic link; refused')
    if not path.is_file():
        raise BackendError(f'external data of tensor {tensor}: {location!r} is not a '
                           'regular file in the model folder')


def inspect_model_file(onnx_path: Path, allow_external_data: bool) -> Dict[str, str]:
    """Check ``onnx_path`` and return its ``metadata_props``.

    Raises :class:`BackendError` for a file ``onnx`` cannot parse, and for external data
    (any, unless ``allow_external_data``; then any outside the model's folder or through a
    link).
    """
    import onnx  # imported on use: importing onnx costs about a second

    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as err:  # DecodeError and others for a file that is not a model
        raise BackendError(f'{onnx_path}: not a readable ONNX model ({first_line(err)})') \
            from None
    for tensor, location in external_locations(proto):
        if not allow_external_data:
            raise BackendError(f'{onnx_path}: tensor {tensor} keeps its data in another '
                               f'file ({location!r}); external data is refused unless allowed '
                               '(allow_external_data=True, --allow-external-data)')
        try:
            _check_location(Path(os.path.realpath(onnx_path.parent)), tensor, location)
        except BackendError as err:
            raise BackendError(f'{onnx_path}: {err}') from None
    return {prop.key: prop.value for prop in proto.metadata_props}
