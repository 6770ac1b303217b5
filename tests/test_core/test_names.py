"""Backend and IR names are checked where they are given: a typo is an error, not a no-op."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdeploy_srcnn.core import (IR, Backend, BackendChecker, IRChecker, RewriteEnv,
                                 RewriterContext, RewriterError)
from mmdeploy_srcnn.registry import BACKENDS

# MMDeploy 1.x's backend names (mmdeploy/utils/constants.py and mmdeploy/backend/*).
MMDEPLOY_BACKENDS = ('default', 'pytorch', 'tensorrt', 'onnxruntime', 'pplnn', 'ncnn', 'snpe',
                     'openvino', 'sdk', 'torchscript', 'rknn', 'ascend', 'coreml', 'tvm', 'vacc',
                     'ipu')


def _silu(x, inplace=False):
    return x


def test_every_mmdeploy_backend_name_is_a_member():
    assert set(MMDEPLOY_BACKENDS) <= {member.value for member in Backend}
    assert {member.value for member in IR} == {'onnx', 'torchscript', 'default'}


@pytest.mark.parametrize('backend', MMDEPLOY_BACKENDS)
def test_ported_rewriters_register_for_every_mmdeploy_backend(manager, backend):
    manager.function_rewriter.register_rewriter('torch.nn.functional.silu',
                                                backend=backend)(_silu)
    manager.module_rewriter.register_rewrite_module('torch.nn.SiLU', backend=backend)(nn.Module)
    manager.symbolic_rewriter.register_symbolic('aten::silu', backend=backend)(_silu)
    assert [r.backend for r in manager.function_rewriter.records()] == [backend]
    assert [r.backend for r in manager.module_rewriter.records()] == [backend]
    assert [r.backend for r in manager.symbolic_rewriter.records()] == [backend]


def _register_function(manager, **names):
    manager.function_rewriter.register_rewriter('torch.nn.functional.silu', **names)(_silu)


def _register_module(manager, **names):
    manager.module_rewriter.register_rewrite_module('torch.nn.SiLU', **names)(nn.Module)


def _register_symbolic(manager, **names):
    manager.symbolic_rewriter.register_symbolic('aten::silu', **names)(_silu)


@pytest.mark.parametrize('register', [_register_function, _register_module, _register_symbolic])
def test_a_misspelled_backend_is_refused_at_registration(manager, register):
    with pytest.raises(ValueError, match=r"'torch.nn.functional.silu'|'torch.nn.SiLU'|"
                                         r"'aten::silu'") as raised:
        register(manager, backend='onnxrumtime')
    message = str(raised.value)
    assert "unknown Backend name 'onnxrumtime'; did you mean 'onnxruntime'?" in message
    assert 'known: ascend, coreml, default, ipu, ncnn, onnxruntime, openvino' in message
    assert isinstance(raised.value, RewriterError)
    assert (manager.function_rewriter.records() == manager.module_rewriter.records()
            == manager.symbolic_rewriter.records() == [])


@pytest.mark.parametrize('register', [_register_function, _register_module, _register_symbolic])
def test_a_misspelled_ir_is_refused_at_registration(manager, register):
    with pytest.raises(ValueError, match=r"unknown IR name 'onxx'; did you mean 'onnx'\? "
                                         r"\(known: default, onnx, torchscript\)"):
        register(manager, ir='onxx')


@pytest.mark.parametrize('make, message', [
    (lambda: RewriterContext(backend='onnxrumtime'),
     "RewriterContext: backend: unknown Backend name 'onnxrumtime'; did you mean 'onnxruntime'"),
    (lambda: RewriterContext(ir='torchscrpt'),
     "RewriterContext: ir: unknown IR name 'torchscrpt'; did you mean 'torchscript'"),
    (lambda: BackendChecker('open_vino'), "unknown Backend name 'open_vino'; did you mean "
                                          "'openvino'"),
    (lambda: IRChecker('ONNX'), "unknown IR name 'ONNX'"),
    (lambda: RewriteEnv('my_engine', 'onnx'), "unknown Backend name 'my_engine' "
                                              r"\(known: ascend"),
])
def test_contexts_and_checkers_check_names_too(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_engine_registered_as_a_backend_wrapper_is_a_known_name(manager):
    name = 'h8_test_engine'
    with pytest.raises(ValueError, match=f"unknown Backend name '{name}'"):
        RewriterContext(backend=name)
    BACKENDS.register_module(name=name, module=type('Engine', (), {}))
    try:
        assert name in Backend.known()
        _register_function(manager, backend=name)
        with RewriterContext(backend=name, rewriter_manager=manager):
            # _silu returns its input: the rewrite applies for the registered engine.
            assert F.silu(torch.ones(1)).item() == 1.0
    finally:
        BACKENDS.module_dict.pop(name)
    assert name not in Backend.known()
