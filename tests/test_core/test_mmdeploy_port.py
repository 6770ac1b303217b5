"""Rewriters written the MMDeploy 1.x way run here with only their import lines changed.

The rewriters below use MMDeploy's API exactly as MMDeploy's own rewriters do: the registration
decorators and their keywords (``backend=``, ``ir=``, ``extra_checkers=``, ``is_pytorch=``,
``arg_descriptors=``), ``Backend``/``IR`` members, ``get_context()`` with and without a key,
``ctx.origin_func``, ``ctx.cfg``, module rewrites built as ``cls(module, deploy_cfg, **kwargs)``
and ``@mark``. Under MMDeploy they would import ``FUNCTION_REWRITER`` etc. from
``mmdeploy.core``; here the names are bound to a private :class:`RewriterManager` so that these
rewrites stay out of the rest of the test session. The two ``exporter='dynamo'`` translations
are this package's addition (MMDeploy has no dynamo exporter).

Three small models (``mmdeploy_codebase``) are exported inside a ``RewriterContext`` through
both exporters, once per module; each test checks one rewrite's mark on the graph (op types
downstream of the input it owns) and every test checks ONNX Runtime against eager PyTorch run
in the same context.
"""
import io
import logging
import warnings
from typing import Dict, List, Sequence, Set

import mmdeploy_codebase as codebase
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn
from torch.onnx import symbolic_helper as sym_help

from mmdeploy_srcnn.core import (IR, Backend, LibVersionChecker, RewriterContext, RewriterManager,
                                 mark)

PORT = RewriterManager()
FUNCTION_REWRITER = PORT.function_rewriter
MODULE_REWRITER = PORT.module_rewriter
SYMBOLIC_REWRITER = PORT.symbolic_rewriter

CODEBASE = codebase.__name__
ATOL = 1e-5  # float32 graphs against eager float32; the ops are the same up to summation order


# ---- function rewrites ----------------------------------------------------------------------

@FUNCTION_REWRITER.register_rewriter(func_name='torch.Tensor.repeat', backend='tensorrt')
def tensor__repeat__tensorrt(input: torch.Tensor, *size):
    """Repeat a 1-D tensor as 2-D: the engine cannot tile along the batch axis."""
    ctx = FUNCTION_REWRITER.get_context()
    if input.dim() == 1 and len(size) == 1:
        return ctx.origin_func(input.unsqueeze(0), 1, *size).squeeze(0)
    return ctx.origin_func(input, *size)


@FUNCTION_REWRITER.register_rewriter(func_name='torch.triu')
@FUNCTION_REWRITER.register_rewriter(func_name='torch.Tensor.triu')
def triu__default(input: torch.Tensor, diagonal: int = 0, *args, **kwargs):
    """Upper triangle by a comparison mask, for engines without ``Trilu``."""
    rows = torch.arange(input.shape[-2], device=input.device).unsqueeze(-1)
    cols = torch.arange(input.shape[-1], device=input.device).unsqueeze(0)
    return input * (cols - rows >= diagonal).to(input.dtype)


@FUNCTION_REWRITER.register_rewriter(func_name='torch.atan2', backend=Backend.DEFAULT.value)
def atan2__default(input1: torch.Tensor, input2: torch.Tensor):
    """``atan(y / x)``: valid for x > 0, which the caller guarantees."""
    return torch.atan(input1 / input2)


@FUNCTION_REWRITER.register_rewriter(func_name='torch.Tensor.masked_fill',
                                     backend=Backend.ONNXRUNTIME.value)
def masked_fill__onnxruntime(input, mask, value):
    """-inf fills become a large finite number (never selected in a TENSORRT context)."""
    ctx = FUNCTION_REWRITER.get_context()
    if value == float('-inf'):
        value = -1e30
    return ctx.origin_func(input, mask, value)


@FUNCTION_REWRITER.register_rewriter(
    func_name=f'{CODEBASE}.clip_bboxes', backend='tensorrt',
    extra_checkers=LibVersionChecker('tensorrt', min_version='8.2'))
def clip_bboxes__trt8(x1, y1, x2, y2, max_shape):
    """Needs TensorRT >= 8.2 installed, which it is not here: must never apply."""
    raise AssertionError('the LibVersionChecker should have kept this rewrite out')


@FUNCTION_REWRITER.register_rewriter(
    func_name=f'{CODEBASE}.clip_bboxes', backend=Backend.TENSORRT.value,
    extra_checkers=[LibVersionChecker('torch', min_version='2.0')])
def clip_bboxes__torch2(x1, y1, x2, y2, max_shape):
    """With torch >= 2, clamp against the shape tensor directly (no divide and multiply)."""
    zero = torch.zeros_like(max_shape[0])
    return (torch.clamp(x1, zero, max_shape[1]), torch.clamp(y1, zero, max_shape[0]),
            torch.clamp(x2, zero, max_shape[1]), torch.clamp(y2, zero, max_shape[0]))


@mark('box_head', inputs=['boxes', 'max_shape'], outputs=['boxes'])
@FUNCTION_REWRITER.register_rewriter(func_name=f'{CODEBASE}.BoxHead.forward')
def box_head__forward(self, boxes, max_shape):
    """Flatten the boxes when the deploy config asks for a flat output."""
    ctx = FUNCTION_REWRITER.get_context(f'{CODEBASE}.BoxHead.forward')
    boxes = ctx.origin_func(self, boxes, max_shape)
    if codebase.get_ir_config(ctx.cfg).get('flat_boxes', False):
        return boxes.flatten(-2)
    return boxes


@FUNCTION_REWRITER.register_rewriter(func_name='torch.Tensor.chunk', backend='ncnn')
def chunk__ncnn(self, num_chunks: int, dim: int = 0):
    """Chunks by ``index_select`` (the engine has no Split)."""
    length = self.shape[dim]
    step = -(-length // num_chunks)
    return [self.index_select(dim, torch.arange(start, min(start + step, length)))
            for start in range(0, length, step)]


@FUNCTION_REWRITER.register_rewriter(func_name='torch.Tensor.chunk', ir=IR.TORCHSCRIPT)
def chunk__torchscript(self, num_chunks: int, dim: int = 0):
    """For the TorchScript IR only: never selected by an ONNX context."""
    raise AssertionError('selected for the wrong IR')


@FUNCTION_REWRITER.register_rewriter(func_name='torch.nn.functional.normalize', backend='ncnn')
def normalize__ncnn(input, p=2, dim=1, eps=1e-12, *args, **kwargs):
    """L2-normalize on the channel axis only: move ``dim`` there and back."""
    ctx = FUNCTION_REWRITER.get_context()
    dim = dim % input.dim()
    if dim == 1:
        return ctx.origin_func(input, p=p, dim=1, eps=eps)
    return ctx.origin_func(input.transpose(1, dim), p=p, dim=1, eps=eps).transpose(1, dim)


# ---- symbolic rewrites ----------------------------------------------------------------------

@SYMBOLIC_REWRITER.register_symbolic('squeeze', is_pytorch=True)
def squeeze__default(g, self, dim=None):
    """Squeeze with explicit axes, never the ``If`` torch emits for a dynamic axis."""
    if dim is None:
        dims = [i for i, size in enumerate(self.type().sizes()) if size == 1]
    else:
        dims = [sym_help._get_const(dim, 'i', 'dim')]
    ctx = SYMBOLIC_REWRITER.get_context('squeeze')
    if codebase.get_ir_config(ctx.cfg).get('opset_version', 11) >= 13:
        return g.op('Squeeze', self, g.op('Constant', value_t=torch.tensor(dims)))
    return g.op('Squeeze', self, axes_i=dims)


@SYMBOLIC_REWRITER.register_symbolic('layer_norm', is_pytorch=True,
                                     arg_descriptors=['v', 'is', 'v', 'v', 'f', 'i'])
def layer_norm__default(g, input, normalized_shape, weight, bias, eps, cudnn_enable):
    """LayerNorm from ReduceMean, for engines without ``LayerNormalization``."""
    axes = [-i for i in range(len(normalized_shape), 0, -1)]
    mean = g.op('ReduceMean', input, axes_i=axes, keepdims_i=1)
    centered = g.op('Sub', input, mean)
    variance = g.op('ReduceMean', g.op('Mul', centered, centered), axes_i=axes, keepdims_i=1)
    epsilon = g.op('Constant', value_t=torch.tensor(eps, dtype=torch.float32))
    out = g.op('Div', centered, g.op('Sqrt', g.op('Add', variance, epsilon)))
    if not sym_help._is_none(weight):
        out = g.op('Mul', out, weight)
    if not sym_help._is_none(bias):
        out = g.op('Add', out, bias)
    return out


@SYMBOLIC_REWRITER.register_symbolic('aten::layer_norm', exporter='dynamo', opset=18)
def layer_norm__dynamo(input, normalized_shape, weight=None, bias=None, eps=1e-5,
                       cudnn_enable=True):
    """The same decomposition for the dynamo exporter (onnxscript)."""
    from onnxscript import opset18 as op
    axes = op.Constant(value_ints=[-i for i in range(len(normalized_shape), 0, -1)])
    centered = op.Sub(input, op.ReduceMean(input, axes, keepdims=1))
    variance = op.ReduceMean(op.Mul(centered, centered), axes, keepdims=1)
    out = op.Div(centered, op.Sqrt(op.Add(variance, op.Constant(value_float=eps))))
    if weight is not None:
        out = op.Mul(out, weight)
    if bias is not None:
        out = op.Add(out, bias)
    return out


@SYMBOLIC_REWRITER.register_symbolic('aten::squeeze.dim', backend=Backend.NCNN, exporter='dynamo')
def squeeze_dim__ncnn(self, dim: int):
    """Squeeze as a Reshape to the kept dimensions (dynamo exporter, ncnn only)."""
    from onnxscript import opset18 as op
    rank = len(self.shape)
    kept = [i for i in range(rank) if i != dim % rank]
    return op.Reshape(self, op.Gather(op.Shape(self), op.Constant(value_ints=kept)))


# ---- module rewrites ------------------------------------------------------------------------

@MODULE_REWRITER.register_rewrite_module(f'{CODEBASE}.PositionalEncoding', backend='default')
class PositionalEncoding(nn.Module):
    """Compute the sinusoid table in the graph instead of shipping the buffer."""

    def __init__(self, module, deploy_cfg, **kwargs):
        super().__init__()
        self._module = module
        self.deploy_cfg = deploy_cfg
        self.n_position = module.position_table.size(1)
        self.d_hid = module.position_table.size(2)

    def forward(self, x):
        position = torch.arange(x.size(1), device=x.device, dtype=torch.float32).unsqueeze(1)
        pairs = torch.arange(self.d_hid, device=x.device) // 2 * 2
        angle = position * torch.pow(10000.0, -pairs.to(torch.float32) / self.d_hid)
        even = (torch.arange(self.d_hid, device=x.device) % 2 == 0)
        return x + torch.where(even, torch.sin(angle), torch.cos(angle)).unsqueeze(0)


@MODULE_REWRITER.register_rewrite_module(f'{CODEBASE}.SRCNNNet', backend=Backend.NCNN.value)
class SRCNNWrapper(nn.Module):
    """SRCNN for an engine without cubic resize: the upsampler becomes bilinear.

    Takes the original's ``__init__`` arguments, which MMDeploy cannot supply
    (open-mmlab/mmdeploy#1200); the defaults here are deliberately not the model's.
    """

    def __init__(self, module, cfg, channels=(3, 64, 32, 3), kernel_sizes=(9, 1, 5),
                 upscale_factor=4):
        super().__init__()
        self.module = module
        self.kernel_sizes = tuple(kernel_sizes)
        self.upscale_factor = upscale_factor

    def forward(self, x):
        x = F.interpolate(x, scale_factor=self.upscale_factor, mode='bilinear',
                          align_corners=False)
        m = self.module
        return m.conv3(m.relu(m.conv2(m.relu(m.conv1(x)))))


# ---- exports --------------------------------------------------------------------------------

def _export(model: nn.Module, args: Sequence[torch.Tensor], names: List[str], ctx, exporter,
            dynamic_axes=None) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # exporter deprecations and pytree notices
        if exporter == 'torchscript':
            buffer = io.BytesIO()
            torch.onnx.export(model, tuple(args), buffer, dynamo=False, opset_version=ctx.opset,
                              input_names=names, do_constant_folding=False,
                              dynamic_axes=dynamic_axes)
            proto = onnx.load_from_string(buffer.getvalue())
        else:
            logging.getLogger('torch.onnx._internal.exporter._registration').setLevel(
                logging.ERROR)
            program = torch.onnx.export(model, tuple(args), None, dynamo=True,
                                        opset_version=ctx.opset, input_names=names,
                                        custom_translation_table=ctx.dynamo_translation_table(),
                                        optimize=False, verbose=False)
            proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _run(proto: onnx.ModelProto, names: List[str], args: Sequence[torch.Tensor]) -> List:
    session = ort.InferenceSession(proto.SerializeToString(), providers=['CPUExecutionProvider'])
    return session.run(None, {name: arg.numpy() for name, arg in zip(names, args)})


def downstream_ops(proto: onnx.ModelProto, name: str) -> Set[str]:
    """Op types of every node that (transitively) reads graph input ``name``."""
    reached, ops = {name}, set()
    for node in proto.graph.node:  # exported graphs are topologically sorted
        if reached & set(node.input):
            ops.add(node.op_type)
            reached.update(node.output)
    return ops


def _exported(build, names, args, cfg, backend, exporter, dynamic_axes=None) -> Dict:
    """Export ``build()`` (through ``patch_model``) in a context; run it; run eager in it."""
    opset = 17 if exporter == 'torchscript' else 18
    cfg = Config(dict(onnx_config=dict(opset_version=opset, **cfg)))
    with MODULE_REWRITER.record_init_args():
        model = build().eval()
    patched = MODULE_REWRITER.patch_model(model, cfg, backend=backend, ir=IR.ONNX)
    with RewriterContext(cfg, backend=backend, ir=IR.ONNX, opset=opset,
                         rewriter_manager=PORT) as ctx, torch.no_grad():
        proto = _export(patched, args, names, ctx, exporter, dynamic_axes)
        expected = patched(*args)
    return dict(proto=proto, outputs=_run(proto, names, args), expected=expected,
                model=model, patched=patched, exporter=exporter)


def _assert_outputs(result: Dict) -> None:
    expected = result['expected']
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    assert len(result['outputs']) == len(expected)
    for actual, wanted in zip(result['outputs'], expected):
        np.testing.assert_allclose(actual, wanted.numpy(), atol=ATOL, rtol=0)


EXPORTERS = ['torchscript', 'dynamo']
GEN = torch.Generator().manual_seed(0)

DETECTOR_NAMES = ['boxes', 'max_shape', 'rep', 'tri', 'ang', 'masked']
DETECTOR_ARGS = [torch.rand(5, 4, generator=GEN) * 40 - 5, torch.tensor([30.0, 20.0]),
                 torch.rand(3, 4, generator=GEN), torch.rand(4, 4, generator=GEN),
                 torch.rand(2, 3, generator=GEN) + 0.1, torch.rand(2, 3, generator=GEN)]


class Detector(nn.Module):
    """Group A: one input per function rewrite, one output each."""

    def __init__(self):
        super().__init__()
        self.head = codebase.BoxHead()

    def forward(self, boxes, max_shape, rep, tri, ang, masked):
        return (self.head(boxes, max_shape), rep.sum(0).repeat(2), torch.triu(tri.T @ tri),
                torch.atan2(ang, ang + 1), masked.masked_fill(masked > 0.5, float('-inf')))


RECOGNIZER_NAMES = ['feats', 'seq', 'vecs', 'tokens']
RECOGNIZER_ARGS = [torch.rand(1, 6, 8, generator=GEN), torch.rand(1, 6, 8, generator=GEN),
                   torch.rand(1, 2, 4, 8, generator=GEN), torch.rand(1, 1, 4, 8, generator=GEN)]


class Recognizer(nn.Module):
    """Group B: a module rewrite, two function rewrites and two symbolic rewrites."""

    def __init__(self):
        super().__init__()
        self.encoding = codebase.PositionalEncoding(d_hid=8, n_position=16)
        self.norm = nn.LayerNorm(8)

    def forward(self, feats, seq, vecs, tokens):
        first, second = seq.chunk(2, dim=1)
        return (self.encoding(feats), first, second, F.normalize(vecs, dim=3),
                self.norm(tokens.squeeze(1)))


@pytest.fixture(scope='module', params=EXPORTERS)
def detector(request):
    return _exported(Detector, DETECTOR_NAMES, DETECTOR_ARGS, dict(flat_boxes=True),
                     Backend.TENSORRT, request.param)


@pytest.fixture(scope='module', params=EXPORTERS)
def recognizer(request):
    # The TorchScript exporter sees the squeezed axis as dynamic: torch would emit an ``If``.
    return _exported(Recognizer, RECOGNIZER_NAMES, RECOGNIZER_ARGS, {}, Backend.NCNN,
                     request.param, dynamic_axes={'tokens': {1: 'one'}})


@pytest.fixture(scope='module', params=EXPORTERS)
def srcnn(request):
    def build():
        return codebase.SRCNNNet(channels=(3, 8, 4, 3), kernel_sizes=(3, 1, 3),
                                 upscale_factor=2)

    return _exported(build, ['lr'], [torch.rand(1, 3, 6, 7, generator=GEN)], {}, 'ncnn',
                     request.param)


# ---- group A: TENSORRT ----------------------------------------------------------------------

def test_detector_outputs_match_eager(detector):
    _assert_outputs(detector)


def test_repeat_rewrite_lifts_the_1d_tensor(detector):
    ops = downstream_ops(detector['proto'], 'rep')
    assert {'Unsqueeze', 'Tile', 'Squeeze'} <= ops
    np.testing.assert_allclose(detector['outputs'][1],
                               DETECTOR_ARGS[2].sum(0).repeat(2).numpy(), atol=ATOL, rtol=0)


def test_triu_rewrite_has_no_trilu(detector):
    ops = downstream_ops(detector['proto'], 'tri')
    assert 'Trilu' not in ops and 'MatMul' in ops
    tri = DETECTOR_ARGS[3]
    np.testing.assert_allclose(detector['outputs'][2], torch.triu(tri.T @ tri).numpy(),
                               atol=ATOL, rtol=0)


def test_atan2_rewrite_is_a_plain_atan(detector):
    assert downstream_ops(detector['proto'], 'ang') == {'Add', 'Div', 'Atan'}
    ang = DETECTOR_ARGS[4]
    np.testing.assert_allclose(detector['outputs'][3], torch.atan2(ang, ang + 1).numpy(),
                               atol=1e-6, rtol=0)  # equal to atan2 where x > 0


def test_checkers_pick_the_torch2_clip_and_cfg_flattens_the_boxes(detector):
    # clip_bboxes__trt8 needs tensorrt installed (its checker fails); __torch2 applies and
    # never divides by the shape. box_head__forward read flat_boxes=True from ctx.cfg.
    assert 'Div' not in downstream_ops(detector['proto'], 'max_shape')
    boxes, max_shape = DETECTOR_ARGS[:2]
    high = torch.stack([max_shape[1], max_shape[0]] * 2)
    expected = torch.minimum(boxes.clamp(min=0), high).flatten()
    assert detector['outputs'][0].shape == (20,)
    np.testing.assert_allclose(detector['outputs'][0], expected.numpy(), atol=ATOL, rtol=0)


def test_onnxruntime_rewrite_is_not_selected_for_tensorrt(detector):
    masked = DETECTOR_ARGS[5]
    assert np.isneginf(detector['outputs'][4]).sum() == int((masked > 0.5).sum()) > 0


# ---- group B: NCNN --------------------------------------------------------------------------

def test_recognizer_outputs_match_eager(recognizer):
    _assert_outputs(recognizer)


def test_module_rewrite_computes_the_table_in_the_graph(recognizer):
    assert isinstance(recognizer['patched'].encoding, PositionalEncoding)
    assert type(recognizer['model'].encoding) is codebase.PositionalEncoding  # caller's model
    assert {'Sin', 'Cos'} <= {node.op_type for node in recognizer['proto'].graph.node}
    expected = recognizer['model'].encoding(RECOGNIZER_ARGS[0])  # the buffer-based original
    np.testing.assert_allclose(recognizer['outputs'][0], expected.detach().numpy(), atol=ATOL,
                               rtol=0)


def test_chunk_rewrite_for_ncnn_and_not_the_torchscript_ir_one(recognizer):
    ops = downstream_ops(recognizer['proto'], 'seq')
    assert 'Gather' in ops and not ops & {'Split', 'Slice'}
    first, second = RECOGNIZER_ARGS[1].chunk(2, dim=1)
    np.testing.assert_allclose(recognizer['outputs'][1], first.numpy(), atol=0, rtol=0)
    np.testing.assert_allclose(recognizer['outputs'][2], second.numpy(), atol=0, rtol=0)


def test_normalize_rewrite_moves_the_axis(recognizer):
    assert 'Transpose' in downstream_ops(recognizer['proto'], 'vecs')
    np.testing.assert_allclose(recognizer['outputs'][3],
                               F.normalize(RECOGNIZER_ARGS[2], dim=3).numpy(), atol=ATOL, rtol=0)


def test_symbolic_rewrites_for_squeeze_and_layer_norm(recognizer):
    ops = downstream_ops(recognizer['proto'], 'tokens')
    assert 'LayerNormalization' not in ops and 'ReduceMean' in ops
    assert 'If' not in ops
    if recognizer['exporter'] == 'torchscript':  # squeeze__default
        assert 'Squeeze' in ops
    else:  # squeeze_dim__ncnn
        assert 'Reshape' in ops and 'Squeeze' not in ops
    norm = recognizer['model'].norm
    np.testing.assert_allclose(recognizer['outputs'][4],
                               norm(RECOGNIZER_ARGS[3].squeeze(1)).detach().numpy(), atol=ATOL,
                               rtol=0)


# ---- group C: a module rewrite that needs the original's __init__ arguments -----------------

def test_srcnn_wrapper_gets_the_recorded_init_arguments(srcnn):
    wrapper = srcnn['patched']
    assert isinstance(wrapper, SRCNNWrapper)
    assert (wrapper.upscale_factor, wrapper.kernel_sizes) == (2, (3, 1, 3))  # not 4, (9, 1, 5)
    (resize,) = [node for node in srcnn['proto'].graph.node if node.op_type == 'Resize']
    modes = {attr.name: attr.s for attr in resize.attribute}
    assert modes['mode'] == b'linear'
    assert srcnn['outputs'][0].shape == (1, 3, 12, 14)
    _assert_outputs(srcnn)
