"""A model that is not ours, deployed by config: examples/feature_resize_sr.py.

FeatureResizeSR is registered from a user module through ``custom_imports`` and declares its
own convention (BGR, [0, 255], a halo of 3); the config names the graph ``lr_bgr``/``scales``/
``sr_bgr`` with the ``nchw`` factor layout. Each exporter is deployed with ``tools/deploy.py``
once with each resize form (the matmul resize, ``Resize``), and the files are checked: the
verification report, the graph, the metadata, the torch-free app against eager PyTorch, and
tiled against untiled.

The weights are seeded He-normal, not the default initialisation: with it the HR stage's
output is nearly constant, which would hide a wrong halo or a swapped channel.
"""
import json
import math
import sys
from pathlib import Path
from typing import Dict, Set

import numpy as np
import onnx
import pytest
import torch
from support.tools import load_tool
from torch import nn

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.rewrites import deploy_context
from mmdeploy_srcnn.app import Upscaler
from mmdeploy_srcnn.app import cli as app_cli
from mmdeploy_srcnn.models import build_model, save_checkpoint
from mmdeploy_srcnn.registry import MODELS
from mmdeploy_srcnn.utils.image import read_image, write_image
from mmdeploy_srcnn.utils.model_meta import ModelConvention

ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'configs/example_feature_resize_sr.py'
DYNAMO_CONFIG = 'configs/example_feature_resize_sr_dynamo.py'
SMALL_MATRIX = ['verify.sizes=[(12,10),(9,14)]', 'verify.batch_sizes=[1,2]']
EXPECTED_HALO = 3  # three 3x3 convolutions after the resize, one pixel each

ALL_ENGINES = ['openvino', 'onnxruntime', 'reference']
# Each exporter with each resize form once; two of them compared on every engine.
DEPLOYS = {
    'torchscript-matmul': dict(config=CONFIG, matmul_resize=True, compare=None),
    'dynamo-resize': dict(config=DYNAMO_CONFIG, matmul_resize=False, compare=None),
    'torchscript-resize-engines': dict(config=CONFIG, matmul_resize=False, compare=ALL_ENGINES),
    'dynamo-matmul-engines': dict(config=DYNAMO_CONFIG, matmul_resize=True,
                                  compare=ALL_ENGINES),
}

deploy = load_tool('deploy')


@pytest.fixture(scope='module', autouse=True)
def in_repo_root():
    """Run from the repository root: custom_imports searches the current directory, as it does
    for tools/deploy.py users. Afterwards the user module is forgotten and its model
    unregistered, so the rest of the suite sees the registry as the package leaves it."""
    registered = set(MODELS.module_dict)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        yield
    for name in set(MODELS.module_dict) - registered:
        MODELS.module_dict.pop(name)
    for module in [name for name in sys.modules if name.split('.')[0] == 'examples']:
        del sys.modules[module]


@pytest.fixture(scope='module')
def cfg(in_repo_root):
    return load_deploy_config(CONFIG)


@pytest.fixture(scope='module')
def model(cfg) -> nn.Module:
    """The config's model with seeded He-normal weights (the last layer's scaled by 0.2, so
    outputs stay mostly inside [0, 255])."""
    model = build_model(cfg.model)
    generator = torch.Generator().manual_seed(0)
    convs = [layer for layer in model.modules() if isinstance(layer, nn.Conv2d)]
    with torch.no_grad():
        for conv in convs:
            gain = 0.2 if conv is convs[-1] else 1.0
            std = gain * math.sqrt(2 / (conv.in_channels * conv.kernel_size[0] ** 2))
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.05 * gain)
    return model.eval()


@pytest.fixture(scope='module')
def demo_image(tmp_path_factory) -> Path:
    """A small demo image: the side-by-side images are not what these tests check."""
    path = tmp_path_factory.mktemp('demo') / 'demo.png'
    write_image(path, np.random.default_rng(2).integers(0, 256, (16, 20, 3), dtype=np.uint8))
    return path


@pytest.fixture(scope='module')
def checkpoint(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('checkpoint') / 'feature_resize_sr.pth'
    save_checkpoint(model, path)
    return path


@pytest.fixture(scope='module', params=[
    pytest.param(name, marks=[pytest.mark.openvino] if plan['compare'] else [], id=name)
    for name, plan in DEPLOYS.items()])
def deployed(request, checkpoint, demo_image, tmp_path_factory) -> Dict:
    """Run tools/deploy.py main(); returns the plan with its exit code, file and report."""
    plan = DEPLOYS[request.param]
    work_dir = tmp_path_factory.mktemp(request.param)
    argv = [plan['config'], '--checkpoint', str(checkpoint), '--img', str(demo_image),
            '--work-dir', str(work_dir), '--cfg-options', *SMALL_MATRIX,
            f'onnx_config.matmul_resize={plan["matmul_resize"]}']
    if plan['compare']:
        argv += ['--compare-backends', *plan['compare']]
    code = deploy.main(argv)
    report = json.loads((work_dir / 'report.json').read_text())
    return dict(plan, code=code, onnx=work_dir / 'end2end.onnx', report=report)


def eager(model: nn.Module, cfg, rgb: np.ndarray, scale_h: float, scale_w: float) -> np.ndarray:
    """PyTorch's output for an N x 3 x H x W RGB batch in [0, 1], as RGB in [0, 1], fed the
    way the model declares (BGR, [0, 255]; written out here, not taken from the pipeline)."""
    bgr = torch.from_numpy(np.ascontiguousarray(rgb[:, ::-1]) * np.float32(255))
    factor = torch.tensor([1, 1, scale_h, scale_w], dtype=torch.float32)
    with deploy_context(cfg), torch.no_grad():
        out = model(bgr, factor).numpy()
    return out[:, ::-1] / np.float32(255)


def ancestors(graph: onnx.GraphProto, name: str) -> Set[str]:
    """Every value (graph inputs included) that ``name`` is computed from."""
    producers = {out: node for node in graph.node for out in node.output}
    seen: Set[str] = set()
    pending = [name]
    while pending:
        node = producers.get(pending.pop())
        for value in node.input if node is not None else []:
            if value and value not in seen:
                seen.add(value)
                pending.append(value)
    return seen


def matmul_resized(graph: onnx.GraphProto, data: str) -> str:
    """The output of the matmul resize of ``data``: ``MatMul(MatMul(Wh, data), WwT)`` whose
    matrices are computed from the factor input."""
    inner, = [node for node in graph.node if node.op_type == 'MatMul' and node.input[1] == data]
    outer, = [node for node in graph.node
              if node.op_type == 'MatMul' and node.input[0] == inner.output[0]]
    assert 'scales' in ancestors(graph, inner.input[0])
    assert 'scales' in ancestors(graph, outer.input[1])
    return outer.output[0]


def test_deploys_and_verifies(deployed):
    report = deployed['report']
    assert deployed['code'] == 0 and report['passed'] is True
    rows = report['verification']
    assert len(rows) == 2 * 2 * 6  # batch sizes x sizes x the config's scales
    for row in rows:
        assert row['passed'] and row['max_abs_diff'] <= 1e-4, row
        assert row['torch_shape'] == row['backend_shape']
    assert report['weights'] == 'checkpoint'
    if deployed['compare']:
        comparison = report['backend_comparison']
        assert comparison['engines'] == ['pytorch', *deployed['compare']]
        assert comparison['passed'] and len(comparison['pairs']) == 6
        for pair in comparison['pairs']:
            assert pair['shape_mismatches'] == 0 and pair['cases'] == len(rows), pair
            limit = 1e-4 if 'pytorch' in pair['engines'] else 1e-5
            assert pair['max_abs_diff'] <= limit, pair


def test_graph_resizes_by_the_factor_input_between_the_two_stages(deployed):
    graph = onnx.load(str(deployed['onnx'])).graph
    assert [value.name for value in graph.input] == ['lr_bgr', 'scales']
    assert [value.name for value in graph.output] == ['sr_bgr']
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    convs = [node for node in graph.node if node.op_type == 'Conv']
    assert [weights[node.input[1]] for node in convs] == [
        (32, 3, 1, 1), (12, 32, 1, 1), (12, 12, 3, 3), (12, 12, 3, 3), (3, 12, 3, 3)]
    # The LR convolutions run before the resize, the HR ones after it.
    assert ['scales' in ancestors(graph, node.output[0]) for node in convs] == [
        False, False, True, True, True]
    ops = [node.op_type for node in graph.node if node.op_type != 'Constant']
    if deployed['matmul_resize']:
        lr_features = next(node.output[0] for node in graph.node
                           if node.op_type == 'Relu' and node.input[0] == convs[1].output[0])
        # No Resize of the feature maps or the image (only of the small weight planes).
        assert not any(node.op_type == 'Resize' and node.input[0] in (lr_features, 'lr_bgr')
                       for node in graph.node)
        assert convs[2].input[0] == matmul_resized(graph, lr_features)
        image_resized = matmul_resized(graph, 'lr_bgr')
        add, = [node for node in graph.node if node.output[0] == 'sr_bgr']
        assert add.op_type == 'Add' and image_resized in add.input
    else:
        # With the nchw layout, the factor input is Resize's scales as it is: no Concat.
        assert ops == ['Div', 'Conv', 'Relu', 'Conv', 'Relu', 'Resize', 'Conv', 'Relu', 'Conv',
                       'Relu', 'Conv', 'Mul', 'Resize', 'Add']
        resizes = [node for node in graph.node if node.op_type == 'Resize']
        assert [node.input[2] for node in resizes] == ['scales', 'scales']
        modes = [onnx.helper.get_attribute_value(attr) for node in resizes
                 for attr in node.attribute if attr.name == 'mode']
        assert modes == [b'linear', b'cubic']


def test_metadata_is_what_the_config_and_the_model_declare(deployed, cfg, model):
    convention = ModelConvention.from_onnx(deployed['onnx'])
    assert convention == ModelConvention(
        image_input=cfg.onnx_config.input_names[0], factor_input=cfg.onnx_config.input_names[1],
        output=cfg.onnx_config.output_names[0], factor_format=cfg.onnx_config.factor_format,
        color_order=model.color_order, value_range=model.value_range,
        halo=model.receptive_radius)
    assert (convention.image_input, convention.factor_input, convention.output) == (
        'lr_bgr', 'scales', 'sr_bgr')
    assert convention.factor_format == 'nchw' and convention.color_order == 'BGR'
    assert convention.value_range == (0.0, 255.0) and convention.halo == EXPECTED_HALO


def test_app_matches_eager_pytorch(deployed, model, cfg, tmp_path):
    """srcnn-upscale on a 16-bit PNG at x2.5: within one 16-bit step of eager PyTorch."""
    rgb = 0.1 + 0.8 * np.random.default_rng(3).random((23, 31, 3), dtype=np.float32)
    image = np.rint(rgb * 65535).astype(np.uint16)
    write_image(tmp_path / 'in.png', image)
    code = app_cli.main([str(deployed['onnx']), str(tmp_path / 'in.png'), '-o',
                         str(tmp_path / 'out.png'), '--scale', '2.5', '--quiet'])
    assert code == 0
    result = read_image(tmp_path / 'out.png')
    batch = (image / np.float32(65535)).astype(np.float32).transpose(2, 0, 1)[None]
    expected = eager(model, cfg, batch, 2.5, 2.5)[0].transpose(1, 2, 0)
    expected_u16 = np.rint(np.clip(expected, 0, 1) * 65535)
    assert result.shape == (57, 77, 3) and result.dtype == np.uint16
    assert np.abs(result - expected_u16).max() <= 1
    # The check can tell the colour order apart: the same model fed RGB differs by far more.
    swapped = eager(model, cfg, batch[:, ::-1], 2.5, 2.5)[0, ::-1].transpose(1, 2, 0)
    assert np.abs(np.clip(swapped, 0, 1) - np.clip(expected, 0, 1)).max() > 1e-2


@pytest.mark.parametrize('scale', [1.5, 2.5, (3, 2)])
def test_tiled_equals_untiled(deployed, scale):
    # A small image: far from the origin, a tile's float32 sample coordinates round differently
    # from the whole image's (up to 2.4e-5 at 300 x 260, for SRCNN 3.8e-5), which is the
    # app's float32 limit, not a halo problem.
    image = 0.1 + 0.8 * np.random.default_rng(4).random((90, 100, 3), dtype=np.float32)
    whole = Upscaler(deployed['onnx'], tile=None).upscale(image, scale)
    tiled_upscaler = Upscaler(deployed['onnx'], tile=64)
    assert tiled_upscaler.tile_count(image.shape[:2], scale) >= 9
    np.testing.assert_allclose(tiled_upscaler.upscale(image, scale), whole, rtol=0, atol=1e-5)


def test_tiling_without_the_halo_shows_seams(deployed, tmp_path):
    """The equality above needs the recorded halo: with 0 the tiles' borders show. (A halo of
    1 or 2 still tiles exactly: each tile also reads the resize's taps, a margin of at least
    one input pixel, so :func:`test_receptive_radius_is_exact` is what pins the radius.)"""
    proto = onnx.load(str(deployed['onnx']))
    for prop in proto.metadata_props:
        if prop.key == 'mmdeploy_srcnn.halo':
            prop.value = '0'
    onnx.save(proto, str(tmp_path / 'no_halo.onnx'))
    image = 0.1 + 0.8 * np.random.default_rng(4).random((90, 100, 3), dtype=np.float32)
    whole = Upscaler(tmp_path / 'no_halo.onnx', tile=None).upscale(image, 1.5)
    tiled = Upscaler(tmp_path / 'no_halo.onnx', tile=64).upscale(image, 1.5)
    assert np.abs(tiled - whole).max() > 1e-3


def test_receptive_radius_is_exact(model):
    """After the resize, an output pixel depends on exactly the features within 3 pixels
    (gradient support); before it, the LR stage is pointwise."""
    features = torch.rand(1, 12, 15, 15, generator=torch.Generator().manual_seed(5),
                          requires_grad=True)
    grad, = torch.autograd.grad(model.hr_stage(features)[0, :, 7, 7].sum(), features)
    rows, cols = torch.nonzero(grad.abs().sum(dim=(0, 1)), as_tuple=True)
    reach = int(max((rows - 7).abs().max(), (cols - 7).abs().max()))
    assert reach == model.receptive_radius == EXPECTED_HALO
    assert len(rows) == (2 * EXPECTED_HALO + 1) ** 2  # every tap inside the radius counts
    image = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(6),
                       requires_grad=True)
    grad, = torch.autograd.grad(model.lr_stage(image)[0, :, 2, 2].sum(), image)
    assert torch.nonzero(grad.abs().sum(dim=(0, 1))).tolist() == [[2, 2]]


def test_without_a_checkpoint_random_weights_must_be_asked_for(tmp_path, capsys):
    assert deploy.main([CONFIG, '--work-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'no checkpoint configured' in err and '--random-weights' in err
    assert not (tmp_path / 'end2end.onnx').exists()
