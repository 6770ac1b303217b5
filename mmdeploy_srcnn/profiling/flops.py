"""The work of a super-resolution model, counted from its ``.onnx``: convolution multiply-adds
per output pixel (SRCNN 9-1-5: 20,000, i.e. 40 kFLOP, whatever the scale)."""
from pathlib import Path

import numpy as np

FLOP_PER_MAC = 2


def conv_macs_per_output_pixel(onnx_path: Path) -> int:
    """Multiply-adds per output pixel of the model's convolutions, from their weights.

    Assumes every convolution runs at the output resolution (stride 1, 'same' padding, after
    the upscale), as in SRCNN. Raises ``ValueError`` for a model without convolutions.
    """
    import onnx  # imported on use: importing onnx costs about a second

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    macs = 0
    for node in graph.node:
        if node.op_type != 'Conv':
            continue
        if node.input[1] not in weights:
            raise ValueError(f'{onnx_path}: Conv {node.name!r} has no constant weight')
        out_channels, in_per_group, *kernel = weights[node.input[1]]
        macs += out_channels * in_per_group * int(np.prod(kernel))
    if macs == 0:
        raise ValueError(f'{onnx_path}: no Conv nodes, cannot count FLOPs')
    return macs
