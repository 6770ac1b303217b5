"""Small hand-built ONNX models for backend tests: hostile ones included."""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mmdeploy_srcnn.utils.model_meta import ModelConvention

OPSET = 17


def _io(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def scale_by_weight_model(path: Path, weight: np.ndarray) -> Path:
    """``output = input * weight`` (elementwise, 4 values), with ``factor`` unused."""
    graph = helper.make_graph(
        [helper.make_node('Mul', ['input', 'weight'], ['output'])], 'mul',
        [_io('input', [4]), _io('factor', [2])], [_io('output', [4])],
        [numpy_helper.from_array(weight.astype(np.float32), 'weight')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    onnx.save(model, str(path))
    return path


def external_data_model(path: Path, location: str) -> Path:
    """The model above, whose 16-byte weight is read from ``location`` (relative to it)."""
    model = onnx.load(str(scale_by_weight_model(path, np.ones(4))))
    weight = model.graph.initializer[0]
    weight.ClearField('raw_data')
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (('location', location), ('offset', '0'), ('length', '16')):
        weight.external_data.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def endless_loop_model(path: Path) -> Path:
    """A Loop of 2**62 iterations over the image input (it never ends on its own), with
    SRCNN's convention in its metadata."""
    body = helper.make_graph(
        [helper.make_node('Identity', ['cond_in'], ['cond_out']),
         helper.make_node('Add', ['x_in', 'one'], ['x_out'])], 'body',
        [helper.make_tensor_value_info('i', TensorProto.INT64, []),
         helper.make_tensor_value_info('cond_in', TensorProto.BOOL, []), _io('x_in', None)],
        [helper.make_tensor_value_info('cond_out', TensorProto.BOOL, []), _io('x_out', None)],
        [helper.make_tensor('one', TensorProto.FLOAT, [], [1.0])])
    graph = helper.make_graph(
        [helper.make_node('Loop', ['trip', 'cond', 'input'], ['output'], body=body)], 'loop',
        [_io('input', [1, 3, 'height', 'width']), _io('factor', [2])],
        [_io('output', None)],
        [helper.make_tensor('trip', TensorProto.INT64, [], [2 ** 62]),
         helper.make_tensor('cond', TensorProto.BOOL, [], [True])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    helper.set_model_props(model, ModelConvention().to_metadata())  # fed as SRCNN is
    onnx.save(model, str(path))
    return path
