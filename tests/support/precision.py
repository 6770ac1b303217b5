"""Run an ONNX model on ONNX Runtime the way a reduced-precision engine would, on any CPU.

:func:`round_floats` models an engine that runs a float32 graph in bfloat16 or float16, as
OpenVINO does by default on CPUs with bf16: every float tensor a node reads is stored in the
low precision, while the arithmetic inside a node (a MatMul's or a Conv's accumulation)
stays float32, as in those engines' kernels. Kept in float32, as the engines keep them:

* integer and boolean tensors (untouched);
* ``Resize``'s ``roi`` and ``scales``: ONNX types ``scales`` as float32 whatever the data type,
  and OpenVINO's Interpolate reads them in float32.

That is all: the model keeps nothing else in float32, so it is stricter than OpenVINO, which
also keeps the nodes after the last Conv/MatMul/Interpolate (the "graph tail") in float32.
"""
from typing import Dict, List

import onnx
from onnx import TensorProto, helper, shape_inference

# Largest relative rounding error of each format (half its spacing at 1).
_UNIT_ROUNDOFF = {TensorProto.BFLOAT16: 2.0 ** -8, TensorProto.FLOAT16: 2.0 ** -11}
_KEPT_IN_FLOAT32 = {'Resize': (1, 2)}  # op type -> input indices engines keep in float32


def low_precision_atol(low: int) -> float:
    """Max |diff| against float32 allowed for outputs of about [0, 1] computed in ``low``.

    Five unit roundoffs (0.0195 for bf16, 0.0024 for fp16): the output of the matmul resize
    is rounded about five times (image, weights, intermediate product, weights, output), each
    by up to one unit roundoff of values up to 1.25; the SRCNN convolutions add a little. The
    worst case measured on uniform noise, SRCNN included, was 3.5 unit roundoffs.
    """
    return 5 * _UNIT_ROUNDOFF[low]


def _float_tensors(model: onnx.ModelProto) -> set:
    graph = shape_inference.infer_shapes(model, strict_mode=True).graph
    typed = [*graph.input, *graph.value_info, *graph.output]
    names = {value.name for value in typed
             if value.type.tensor_type.elem_type == TensorProto.FLOAT}
    names |= {init.name for init in graph.initializer if init.data_type == TensorProto.FLOAT}
    return names


def _round_trip(name: str, out_name: str, low: int) -> List[onnx.NodeProto]:
    return [helper.make_node('Cast', [name], [f'{name}/low'], to=low),
            helper.make_node('Cast', [f'{name}/low'], [out_name], to=TensorProto.FLOAT)]


def round_floats(model: onnx.ModelProto, low: int) -> onnx.ModelProto:
    """A copy of ``model`` whose float32 tensors are rounded to ``low`` (``TensorProto.BFLOAT16``
    or ``FLOAT16``) before every use and at the outputs (module docstring)."""
    if low not in (TensorProto.BFLOAT16, TensorProto.FLOAT16):
        raise ValueError(f'low must be TensorProto.BFLOAT16 or FLOAT16, got {low}')
    floats = _float_tensors(model)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    # Each float output is computed under a new name, then rounded into its own name.
    raw = {value.name: f'{value.name}/raw' for value in graph.output if value.name in floats}
    rounded: Dict[str, str] = {}
    nodes: List[onnx.NodeProto] = []
    for node in graph.node:
        kept = _KEPT_IN_FLOAT32.get(node.op_type, ())
        for index, name in enumerate(node.input):
            source = raw.get(name, name)
            if name in floats and index not in kept:
                if source not in rounded:  # one rounded copy per tensor
                    rounded[source] = f'{source}/rounded'
                    nodes.extend(_round_trip(source, rounded[source], low))
                source = rounded[source]
            node.input[index] = source
        node.output[:] = [raw.get(name, name) for name in node.output]
        nodes.append(node)
    for name, source in raw.items():
        nodes.extend(_round_trip(source, name, low))
    graph.ClearField('node')
    graph.node.extend(nodes)
    onnx.checker.check_model(result, full_check=True)
    return result
