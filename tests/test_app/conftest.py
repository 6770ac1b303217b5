"""Fixtures for the torch-free app: a dynamic-factor SRCNN ``.onnx`` and its variants.

``srcnn_onnx`` is the single place that decides which model file the app tests run on: the
project's exporter's output. ``model_variant`` builds the same graph by hand with ``onnx.helper``
(Resize(cubic, a=-0.75, pytorch_half_pixel, scales = [1, 1, scale_h, scale_w]) followed by
Conv 3->64 9x9, Relu, Conv 64->32 1x1, Relu, Conv 32->3 5x5) under other conventions (BGR,
the nchw factor layout, 0..255), which the exporter does not produce.
"""
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mmdeploy_srcnn.utils.model_meta import ModelConvention

OPSET = 17


def _identity_plus_noise(rng: np.random.Generator, out_ch: int, in_ch: int, kernel: int,
                         noise: float) -> np.ndarray:
    """Conv weights that pass channels 0..2 through, plus seeded noise on every tap.

    Small random weights alone give a near-constant output that would hide stitching errors;
    the identity path keeps the output image-like and inside [0, 1], and the noise makes every
    tap of the 9x9 and 5x5 kernels contribute.
    """
    weight = rng.normal(0.0, noise, (out_ch, in_ch, kernel, kernel)).astype(np.float32)
    for channel in range(3):
        weight[channel, channel, kernel // 2, kernel // 2] += 1.0
    return weight


def build_dynamic_srcnn_onnx(path: Path, convention: Optional[ModelConvention] = None,
                             seed: int = 0, resize_only: bool = False) -> Path:
    """Write an SRCNN 9-1-5 whose upscale factor is a float32 graph input.

    ``convention`` (default: the project's) names the inputs and the factor layout and goes
    into ``metadata_props``;
    ``resize_only`` leaves out the convolutions (a bare cubic Resize, to check the app's own
    bicubic against ONNX Runtime).
    """
    convention = convention or ModelConvention()
    rng = np.random.default_rng(seed)
    layers = [] if resize_only else [(64, 3, 9, 0.01), (32, 64, 1, 0.05), (3, 32, 5, 0.01)]
    resized = convention.output if resize_only else 'resized'
    resize_attrs = dict(mode='cubic', cubic_coeff_a=-0.75,
                        coordinate_transformation_mode='pytorch_half_pixel')
    if convention.factor_format == 'hw':
        initializers = [numpy_helper.from_array(np.ones(2, np.float32), 'batch_channel_scales')]
        nodes = [helper.make_node('Concat', ['batch_channel_scales', convention.factor_input],
                                  ['scales'], axis=0),
                 helper.make_node('Resize', [convention.image_input, '', 'scales'], [resized],
                                  **resize_attrs)]
    else:  # 'nchw': the factor already is the Resize scales
        initializers = []
        nodes = [helper.make_node('Resize', [convention.image_input, '', convention.factor_input],
                                  [resized], **resize_attrs)]
    feature = resized
    for index, (out_ch, in_ch, kernel, noise) in enumerate(layers, start=1):
        weight = _identity_plus_noise(rng, out_ch, in_ch, kernel, noise)
        initializers += [numpy_helper.from_array(weight, f'conv{index}.weight'),
                         numpy_helper.from_array(np.zeros(out_ch, np.float32), f'conv{index}.bias')]
        conv_out = convention.output if index == len(layers) else f'conv{index}'
        nodes.append(helper.make_node('Conv', [feature, f'conv{index}.weight', f'conv{index}.bias'],
                                      [conv_out], pads=[kernel // 2] * 4))
        if index < len(layers):
            nodes.append(helper.make_node('Relu', [conv_out], [f'relu{index}']))
            feature = f'relu{index}'
    graph = helper.make_graph(
        nodes, 'srcnn_dynamic',
        inputs=[helper.make_tensor_value_info(convention.image_input, TensorProto.FLOAT,
                                              ['batch', 3, 'height', 'width']),
                helper.make_tensor_value_info(convention.factor_input, TensorProto.FLOAT,
                                              [2 if convention.factor_format == 'hw' else 4])],
        outputs=[helper.make_tensor_value_info(convention.output, TensorProto.FLOAT,
                                               ['batch', 3, 'out_height', 'out_width'])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    helper.set_model_props(model, convention.to_metadata())
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope='session')
def srcnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dynamic-factor model every app test runs: SRCNN exported by the project's exporter.

    Plain 9-1-5 with the identity-like initialisation (seeded): image-like outputs in [0, 1]
    in which every tap of every kernel contributes, so stitching errors cannot hide.
    """
    import torch

    from mmdeploy_srcnn.apis.config import load_deploy_config
    from mmdeploy_srcnn.apis.export import torch2onnx
    from mmdeploy_srcnn.models import SRCNN

    torch.manual_seed(0)
    model = SRCNN(residual=False)
    model.init_identity()
    cfg = load_deploy_config('configs/srcnn_dynamic.py')
    return torch2onnx(model, cfg, tmp_path_factory.mktemp('model'))


@pytest.fixture(scope='session')
def model_variant(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build a variant of the test model: ``model_variant(resize_only=True, color_order='BGR')``.

    Keyword arguments other than ``resize_only`` are :class:`ModelConvention` fields.
    """
    folder = tmp_path_factory.mktemp('variants')

    def build(resize_only: bool = False, **convention_fields: Any) -> Path:
        name = '_'.join(f'{key}-{value}' for key, value in sorted(convention_fields.items()))
        path = folder / f'{name or "default"}{"_resize" if resize_only else ""}.onnx'
        return build_dynamic_srcnn_onnx(path, ModelConvention(**convention_fields),
                                        resize_only=resize_only)
    return build
