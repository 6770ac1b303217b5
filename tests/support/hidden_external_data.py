"""Models that hide external data outside the main graph's initializers.

Each builder writes ``output = input * weight`` (``input`` and ``output`` 4 float32, ``factor``
2 float32 and unused) where the 4 float32 of ``weight`` are read from ``location``, a file
named relative to the model, through one of the places a ModelProto can hold a tensor.
"""
from pathlib import Path
from typing import Callable, Dict

import onnx
from onnx import TensorProto, helper

OPSET = 17


def _external(name: str, location: str) -> TensorProto:
    """4 float32 read from the first 16 bytes of ``location``."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[4],
                         data_location=TensorProto.EXTERNAL)
    for key, value in (('location', location), ('offset', '0'), ('length', '16')):
        tensor.external_data.add(key=key, value=value)
    return tensor


def _sparse(location: str) -> onnx.SparseTensorProto:
    indices = helper.make_tensor('indices', TensorProto.INT64, [4], [0, 1, 2, 3])
    return helper.make_sparse_tensor(_external('weight', location), indices, [4])


def _save(path: Path, nodes, sparse_inits=(), functions=()) -> Path:
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size])
          for name, size in (('input', 4), ('factor', 2), ('output', 4))]
    graph = helper.make_graph([*nodes, helper.make_node('Mul', ['input', 'weight'], ['output'])],
                              'g', io[:2], io[2:],
                              sparse_initializer=list(sparse_inits))
    model = helper.make_model(graph, functions=list(functions), opset_imports=[
        helper.make_opsetid('', OPSET), helper.make_opsetid('local', 1)])
    onnx.save(model, str(path))
    return path


def _function(body) -> onnx.FunctionProto:
    return helper.make_function('local', 'Weight', [], ['weight'], body,
                                [helper.make_opsetid('', OPSET)])


def in_function(path: Path, location: str) -> Path:
    constant = helper.make_node('Constant', [], ['weight'], value=_external('weight', location))
    return _save(path, [helper.make_node('Weight', [], ['weight'], domain='local')],
                 functions=[_function([constant])])


def in_function_subgraph(path: Path, location: str) -> Path:
    def branch(name):
        constant = helper.make_node('Constant', [], [f'{name}_out'],
                                    value=_external(name, location))
        return helper.make_graph([constant], name, [], [
            helper.make_tensor_value_info(f'{name}_out', TensorProto.FLOAT, [4])])

    body = [helper.make_node('Constant', [], ['cond'],
                             value=helper.make_tensor('c', TensorProto.BOOL, [], [True])),
            helper.make_node('If', ['cond'], ['weight'], then_branch=branch('then'),
                             else_branch=branch('else'))]
    return _save(path, [helper.make_node('Weight', [], ['weight'], domain='local')],
                 functions=[_function(body)])


def sparse_constant(path: Path, location: str) -> Path:
    return _save(path, [helper.make_node('Constant', [], ['weight'],
                                         sparse_value=_sparse(location))])


def sparse_initializer(path: Path, location: str) -> Path:
    return _save(path, [], sparse_inits=[_sparse(location)])


def function_default_attribute(path: Path, location: str) -> Path:
    function = _function([helper.make_node('Constant', [], ['weight'])])
    function.node[0].attribute.add(name='value', ref_attr_name='w',
                                   type=onnx.AttributeProto.TENSOR)
    function.attribute_proto.append(helper.make_attribute('w', _external('weight', location)))
    return _save(path, [helper.make_node('Weight', [], ['weight'], domain='local')],
                 functions=[function])


def undeclared_attribute_field(path: Path, location: str) -> Path:
    """A Constant whose ``value`` attribute says FLOAT but also carries a tensor."""
    constant = helper.make_node('Constant', [], ['weight'])
    constant.attribute.add(name='value', type=onnx.AttributeProto.FLOAT,
                           t=_external('weight', location))
    return _save(path, [constant])


Builder = Callable[[Path, str], Path]
RUNNABLE: Dict[str, Builder] = {
    'function Constant': in_function, 'If inside a function': in_function_subgraph,
    'sparse Constant': sparse_constant, 'sparse initializer': sparse_initializer}
"""Builders whose models ONNX Runtime runs (reading the file) once external data is allowed."""
HIDDEN: Dict[str, Builder] = {
    **RUNNABLE, 'function default attribute': function_default_attribute,
    'attribute field its type does not declare': undeclared_attribute_field}
"""Every builder: what the model-file check must find."""
