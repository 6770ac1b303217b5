"""Symbolic rewrites: names, TorchScript registration and restore, dynamo tables, opsets."""
import io
import warnings

import onnx
import pytest
import torch
from torch.onnx import symbolic_helper

from mmdeploy_srcnn.core import Backend, MissingTargetWarning, RewriterContext, RewriterError


@torch.library.custom_op('h1_symbolic_test::scaled_add', mutates_args=())
def scaled_add(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    return x + alpha * y


scaled_add.register_fake(lambda x, y, alpha: torch.empty_like(x))


class ScaledAdd(torch.nn.Module):
    def forward(self, x, y):
        return scaled_add(x, y, 0.5)


def _torchscript_ops(opset, module=None, args=None):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(module or ScaledAdd(), args or (torch.rand(2, 3), torch.rand(2, 3)),
                          buffer, dynamo=False, opset_version=opset)
    return [node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node]


def _torchscript_registered(name, opset):
    from torch.onnx._internal.torchscript_exporter import registration
    group = registration.registry.get_function_group(name)
    return None if group is None else group.get(opset)


@pytest.fixture
def symbolic(manager):
    return manager.symbolic_rewriter


def _mul_add(g, x, y, alpha):
    scale = g.op('Constant', value_t=torch.tensor(alpha, dtype=torch.float32))
    return g.op('Add', x, g.op('Mul', scale, y))


_parsed_mul_add = symbolic_helper.parse_args('v', 'v', 'f')(_mul_add)


@pytest.mark.parametrize('name, is_pytorch, registered', [
    ('squeeze', True, 'aten::squeeze'), ('aten::squeeze', False, 'aten::squeeze'),
    ('h1_symbolic_test::scaled_add', False, 'h1_symbolic_test::scaled_add')])
def test_op_names(symbolic, name, is_pytorch, registered):
    symbolic.register_symbolic(name, is_pytorch=is_pytorch)(_mul_add)
    assert [r.func_name for r in symbolic.records()] == [registered]


@pytest.mark.parametrize('args, kwargs, message', [
    (('mmcv.ops.RoIAlignFunction',), {}, 'torch.autograd.Function path, is not supported'),
    (('squeeze',), {}, 'is_pytorch=True'),
    (('mmcv::roi_align',), dict(is_pytorch=True), "is_pytorch=True names an aten op"),
    (('aten::squeeze.dim',), {}, 'drop the ".overload" suffix'),
    (('aten::squeeze',), dict(exporter='dynamos'), "did you mean 'dynamo'"),
    (('aten::squeeze',), dict(exporter='dynamo', arg_descriptors=['v']),
     'TorchScript symbolics only'),
    (('aten::squeeze',), dict(opset=0), 'opset must be a positive int'),
    (('aten::squeeze',), dict(arg_descriptors='vi'), 'must be a list of strings'),
    (('aten::squeeze',), dict(is_pytorh=True), "did you mean 'is_pytorch'"),
    (('aten::sq ueeze',), {}, 'is not a valid op name'),
])
def test_bad_registrations(symbolic, args, kwargs, message):
    with pytest.raises(RewriterError, match=message):
        symbolic.register_symbolic(*args, **kwargs)


def test_torchscript_symbolic_only_while_open_then_the_previous_is_back(manager, symbolic):
    name = 'h1_symbolic_test::scaled_add'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.register_custom_op_symbolic(name, _parsed_mul_add, 11)  # someone else's
    try:
        seen = []

        @symbolic.register_symbolic(name, arg_descriptors=['v', 'v', 'f'], opset=11, tag='mine')
        def scaled_add__default(g, x, y, alpha):
            ctx = symbolic.get_context('scaled_add')
            seen.append((ctx.opset, ctx.tag, ctx.backend, ctx.origin_func))
            return g.op('Sub', x, y)

        assert _torchscript_ops(13) == ['Constant', 'Mul', 'Add']
        with RewriterContext(backend=Backend.ONNXRUNTIME, rewriter_manager=manager):
            assert _torchscript_ops(13) == ['Sub']
        assert seen == [(13, 'mine', 'onnxruntime', _parsed_mul_add)]
        assert _torchscript_registered(name, 13) is _parsed_mul_add
        assert _torchscript_registered(name, 9) is None  # nothing there before, nothing after
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.unregister_custom_op_symbolic(name, 11)


def test_aten_symbolic_overrides_torch_at_every_opset_and_is_removed(manager, symbolic):
    @symbolic.register_symbolic('hardsigmoid', is_pytorch=True, arg_descriptors=['v'])
    def hardsigmoid__default(g, self):
        return g.op('Sigmoid', self)

    model = torch.nn.Hardsigmoid()
    builtin = {opset: _torchscript_registered('aten::hardsigmoid', opset) for opset in (9, 17)}
    with RewriterContext(rewriter_manager=manager):
        for opset in (11, 17):
            assert _torchscript_ops(opset, model, (torch.rand(3),)) == ['Sigmoid']
    assert {o: _torchscript_registered('aten::hardsigmoid', o) for o in (9, 17)} == builtin
    assert _torchscript_ops(17, model, (torch.rand(3),)) == ['HardSigmoid']


def test_torchscript_below_the_minimum_opset_is_refused(manager, symbolic):
    symbolic.register_symbolic('h1_symbolic_test::scaled_add', arg_descriptors=['v', 'v', 'f'],
                               opset=13)(_mul_add)
    with RewriterContext(rewriter_manager=manager), pytest.raises(
            RewriterError, match=r'h1_symbolic_test::scaled_add: .*_mul_add needs ONNX opset >= '
                                 r'13, the export uses opset 11'):
        _torchscript_ops(11)


def test_context_opset_must_be_the_exported_one(manager, symbolic):
    symbolic.register_symbolic('h1_symbolic_test::scaled_add',
                               arg_descriptors=['v', 'v', 'f'])(_mul_add)
    with RewriterContext(rewriter_manager=manager, opset=17), pytest.raises(
            RewriterError, match='opened with opset=17 but the TorchScript exporter runs opset 13'):
        _torchscript_ops(13)


def _add_translation(x, y, alpha: float):
    from onnxscript import opset18 as op
    return op.Add(x, op.Mul(op.Constant(value_float=alpha), y))


def test_dynamo_table_is_keyed_by_overload_and_only_inside_the_context(manager, symbolic):
    symbolic.register_symbolic('h1_symbolic_test::scaled_add', exporter='dynamo',
                               opset=18)(_add_translation)
    symbolic.register_symbolic('aten::squeeze.dim', exporter='dynamo', backend='ncnn')(
        _add_translation)
    with RewriterContext(rewriter_manager=manager, opset=18) as ctx:
        table = ctx.dynamo_translation_table()
    assert list(table) == [torch.ops.h1_symbolic_test.scaled_add.default]
    assert table[torch.ops.h1_symbolic_test.scaled_add.default].__wrapped__ is _add_translation
    with pytest.raises(RewriterError, match='ran after its RewriterContext closed'):
        table[torch.ops.h1_symbolic_test.scaled_add.default](1, 2, 0.5)
    with pytest.raises(RewriterError, match='needs the RewriterContext open'):
        ctx.dynamo_translation_table()
    with RewriterContext(rewriter_manager=manager, backend='ncnn', opset=18) as ctx:
        assert torch.ops.aten.squeeze.dim in ctx.dynamo_translation_table()


def test_dynamo_table_needs_the_opset_when_a_translation_has_a_minimum(manager, symbolic):
    symbolic.register_symbolic('h1_symbolic_test::scaled_add', exporter='dynamo',
                               opset=18)(_add_translation)
    with RewriterContext(rewriter_manager=manager) as ctx, pytest.raises(
            RewriterError, match=r'opset=<the export opset>: .*scaled_add \(opset >= 18\)'):
        ctx.dynamo_translation_table()


def test_dynamo_translation_below_its_minimum_refuses_when_called(manager, symbolic):
    symbolic.register_symbolic('h1_symbolic_test::scaled_add', exporter='dynamo',
                               opset=20)(_add_translation)
    with RewriterContext(rewriter_manager=manager, opset=18) as ctx:
        translate = ctx.dynamo_translation_table()[
            torch.ops.h1_symbolic_test.scaled_add.default]
        with pytest.raises(RewriterError, match='needs ONNX opset >= 20, the export uses opset 18'):
            translate(1, 2, 0.5)


def test_dynamo_op_names_resolve_or_are_skipped(manager, symbolic):
    symbolic.register_symbolic('h1_not_loaded::op', exporter='dynamo')(_add_translation)
    with pytest.warns(MissingTargetWarning, match="'h1_not_loaded::op' skipped"):
        with RewriterContext(rewriter_manager=manager) as ctx:
            assert ctx.dynamo_translation_table() == {}
    symbolic.register_symbolic('aten::no_such_op', exporter='dynamo')(_add_translation)
    with pytest.raises(RewriterError, match='torch has no op aten::no_such_op'), \
            pytest.warns(MissingTargetWarning):
        RewriterContext(rewriter_manager=manager).__enter__()


def test_dynamo_unknown_overload_is_an_error(manager, symbolic):
    symbolic.register_symbolic('aten::squeeze.nope', exporter='dynamo')(_add_translation)
    with pytest.raises(RewriterError, match="has no overload 'nope' .*dim"):
        with RewriterContext(rewriter_manager=manager):
            pass


def test_a_dynamo_export_uses_the_translation_and_its_context(manager, symbolic):
    seen = []

    @symbolic.register_symbolic('h1_symbolic_test::scaled_add', exporter='dynamo', opset=18)
    def scaled_add__dynamo(x, y, alpha: float):
        from onnxscript import opset18 as op
        ctx = symbolic.get_context()
        seen.append((ctx.opset, ctx.cfg.onnx_config.mode, ctx.origin_func))
        return op.Sub(x, y)

    cfg = dict(onnx_config=dict(mode='sub'))
    x, y = torch.rand(2, 3), torch.rand(2, 3)
    with RewriterContext(cfg, rewriter_manager=manager, opset=18) as ctx, \
            warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(ScaledAdd(), (x, y), None, dynamo=True, opset_version=18,
                                    custom_translation_table=ctx.dynamo_translation_table(),
                                    verbose=False)
    assert [node.op_type for node in program.model_proto.graph.node] == ['Sub']
    assert seen == [(18, 'sub', None)]
    torch.testing.assert_close(program(x, y)[0], x - y)


def test_symbolic_get_context_outside_a_symbolic_raises(symbolic):
    with pytest.raises(RewriterError, match='outside a symbolic rewriter'):
        symbolic.get_context()


def test_parse_args_is_applied_from_arg_descriptors(manager, symbolic):
    captured = []

    @symbolic.register_symbolic('h1_symbolic_test::scaled_add', arg_descriptors=['v', 'v', 'f'])
    def scaled_add__default(g, x, y, alpha):
        captured.append(alpha)
        return _mul_add(g, x, y, alpha)

    with RewriterContext(rewriter_manager=manager):
        assert _torchscript_ops(17) == ['Constant', 'Mul', 'Add']
    assert captured == [0.5] and isinstance(captured[0], float)  # parse_args' 'f'
