"""Which rewrite a context applies: names, the 'default' wildcard, checkers, precedence."""
import importlib.metadata

import pytest
import torch

from mmdeploy_srcnn.core import (IR, Backend, BackendChecker, Checker, IRChecker, LibVersionChecker,
                                 RewriteEnv, RewriterContext, RewriterError, collect_env)


def _double(x):
    return 2 * x


class Recording(Checker):
    """Passes or fails as told, and keeps the environments it was asked about."""

    def __init__(self, result):
        self.result = result
        self.seen = []

    def check(self, env):
        self.seen.append((env['backend'], env['ir'], env['torch']))
        return self.result


@pytest.fixture
def double(make_module):
    module = make_module(double=_double)
    return module, f'{module.__name__}.double'


def _applied(manager, module, **context):
    with RewriterContext(rewriter_manager=manager, **context):
        return module.double(1)


def test_enum_members_are_their_strings():
    assert Backend.ONNXRUNTIME == 'onnxruntime' and IR.ONNX == 'onnx'
    assert str(Backend.TENSORRT) == f'{Backend.TENSORRT}' == 'tensorrt'
    assert {'openvino': 1}[Backend.OPENVINO] == 1
    assert Backend.DEFAULT == IR.DEFAULT == 'default'


@pytest.mark.parametrize('registered, opened', [
    (Backend.TENSORRT, 'tensorrt'), ('tensorrt', Backend.TENSORRT),
    (Backend.TENSORRT.value, Backend.TENSORRT)])
def test_enums_and_strings_select_each_other(manager, registry, double, registered, opened):
    module, target = double
    registry.register_rewriter(target, backend=registered, ir=IR.ONNX)(lambda x: 'rewritten')
    (record,) = registry.records()
    assert type(record.backend) is str and type(record.ir) is str
    assert _applied(manager, module, backend=opened, ir='onnx') == 'rewritten'


@pytest.mark.parametrize('record_ir, context_ir, applies', [
    (IR.DEFAULT, IR.ONNX, True), (IR.DEFAULT, IR.TORCHSCRIPT, True),
    (IR.ONNX, IR.ONNX, True), (IR.ONNX, IR.TORCHSCRIPT, False),
    (IR.ONNX, IR.DEFAULT, False), (IR.DEFAULT, IR.DEFAULT, True)])
def test_default_ir_is_a_wildcard(manager, registry, double, record_ir, context_ir, applies):
    module, target = double
    registry.register_rewriter(target, ir=record_ir)(lambda x: 'rewritten')
    assert (_applied(manager, module, ir=context_ir) == 'rewritten') is applies


def test_a_failing_checker_keeps_the_rewrite_out(manager, registry, double):
    module, target = double
    refuse, accept = Recording(False), Recording(True)
    registry.register_rewriter(target, backend='tensorrt', extra_checkers=[refuse])(lambda x: 'a')
    registry.register_rewriter(target, backend='ncnn', extra_checkers=accept)(lambda x: 'b')
    assert _applied(manager, module, backend='tensorrt') == 2
    assert _applied(manager, module, backend='ncnn') == 'b'
    torch_version = importlib.metadata.version('torch')
    assert refuse.seen == [('tensorrt', 'onnx', torch_version)]
    assert accept.seen == [('ncnn', 'onnx', torch_version)]


def test_environment_reports_installed_versions_and_none_for_missing():
    env = collect_env(Backend.OPENVINO, IR.ONNX)
    assert isinstance(env, RewriteEnv)
    assert (env['backend'], env['ir']) == ('openvino', 'onnx')
    assert env['onnx'] == importlib.metadata.version('onnx')
    assert env['no-such-distribution'] is None
    assert env.get('no-such-distribution', 'absent') == 'absent'


@pytest.mark.parametrize('checker, passes', [
    (LibVersionChecker('torch', min_version='2.0'), True),
    (LibVersionChecker('torch', max_version='1.13'), False),
    (LibVersionChecker('torch', min_version='2.0', max_version='99'), True),
    (LibVersionChecker('tensorrt', min_version='8.2'), False),  # not installed here
    (BackendChecker(Backend.TENSORRT), True), (BackendChecker('ncnn'), False),
    (IRChecker('onnx'), True), (IRChecker(IR.TORCHSCRIPT), False),
])
def test_shipped_checkers(checker, passes):
    assert checker.check(collect_env('tensorrt', IR.ONNX)) is passes


def test_lib_version_checker_refuses_a_bad_bound():
    with pytest.raises(RewriterError, match="'two' is not a PEP 440 version"):
        LibVersionChecker('torch', min_version='two')


def test_extra_checkers_must_be_checkers(registry):
    with pytest.raises(RewriterError, match='extra_checkers must be Checker instances'):
        registry.register_rewriter('math.sqrt', extra_checkers=[lambda env: True])


def test_a_checker_that_raises_is_reported_with_its_target(manager, registry, double):
    module, target = double

    class Broken(Checker):
        def check(self, env):
            return env[42]

    registry.register_rewriter(target, extra_checkers=Broken())(lambda x: 'never')
    with pytest.raises(RewriterError, match=f'Broken.*of the rewrite of {target!r}.*failed'):
        _applied(manager, module)
    assert module.double is _double


def test_precedence_backend_then_ir_then_checkers(manager, registry, double):
    module, target = double
    registry.register_rewriter(target)(lambda x: 'plain')
    registry.register_rewriter(target, extra_checkers=Recording(True))(lambda x: 'checked')
    registry.register_rewriter(target, ir='onnx')(lambda x: 'ir')
    registry.register_rewriter(target, backend='tensorrt')(lambda x: 'backend')
    assert _applied(manager, module, backend='tensorrt') == 'backend'
    assert _applied(manager, module, backend='onnxruntime') == 'ir'
    assert _applied(manager, module, backend='onnxruntime', ir='torchscript') == 'checked'


def test_equally_specific_rewrites_are_an_error_naming_both(manager, registry, double):
    module, target = double

    def by_backend(x):
        return 'backend'

    def by_version(x):
        return 'version'

    registry.register_rewriter(target, backend='tensorrt',
                               extra_checkers=Recording(True))(by_backend)
    registry.register_rewriter(target, backend='tensorrt',
                               extra_checkers=LibVersionChecker('torch', '2.0'))(by_version)
    with pytest.raises(RewriterError, match=r'2 function rewriters of .* same precedence: '
                                            r'.*by_backend.*by_version'):
        _applied(manager, module, backend='tensorrt')
    assert module.double is _double


@pytest.mark.parametrize('keywords, message', [
    (dict(extra_checker=[]), "unknown keyword 'extra_checker'; did you mean 'extra_checkers'"),
    (dict(backends='trt'), "unknown keyword 'backends'; did you mean 'backend'"),
    (dict(checkers=[]), "unknown keyword 'checkers'; did you mean 'extra_checkers'"),
    (dict(IR='onnx'), "unknown keyword 'IR'; did you mean 'ir'"),
    (dict(origin_func=None), "keyword 'origin_func' is reserved"),
    (dict(cfg={}), "keyword 'cfg' is reserved"),
    (dict(opset=11), "keyword 'opset' is reserved"),
    (dict(_object=None), "keyword '_object' is reserved"),
])
def test_misspelled_or_reserved_registration_keywords(registry, keywords, message):
    with pytest.raises(RewriterError, match=message):
        registry.register_rewriter('math.sqrt', **keywords)
    assert registry.records() == []


@pytest.mark.parametrize('keywords, message', [
    (dict(backends='trt'), "did you mean 'backend'"),
    (dict(opset_version=17), "unknown keyword 'opset_version'; did you mean 'opset'"),
    (dict(deploy_cfg={}), "unknown keyword 'deploy_cfg'; did you mean 'cfg'"),
    (dict(rewrite_manager=None), "did you mean 'rewriter_manager'"),
    (dict(origin_func=None), "keyword 'origin_func' is reserved"),
])
def test_misspelled_or_reserved_context_keywords(keywords, message):
    with pytest.raises(RewriterError, match=message):
        RewriterContext(**keywords)


@pytest.mark.parametrize('kwargs, message', [
    (dict(backend=None), 'backend must be a non-empty string'),
    (dict(ir=''), 'ir must be a non-empty string'),
    (dict(opset='17'), 'opset must be a positive int'),
    (dict(cfg=[1]), 'cfg must be an mmengine Config, a dict or None'),
    (dict(rewriter_manager=object()), 'rewriter_manager must be a RewriterManager'),
])
def test_bad_context_arguments(kwargs, message):
    with pytest.raises(RewriterError, match=message):
        RewriterContext(**kwargs)


def test_a_keyword_from_both_registration_and_context_is_an_error(manager, registry, double):
    module, target = double
    registry.register_rewriter(target, mode='fast')(lambda x: 'rewritten')
    with pytest.raises(RewriterError, match=r"keyword 'mode' is given both by the registration "
                                            r".*\('fast'\) and by the RewriterContext \('slow'\)"):
        _applied(manager, module, mode='slow')
    assert module.double is _double


class Model:
    def forward(self, x):
        return 'original'


class Child(Model):
    """Inherits ``forward``: the same function object, but a target of its own."""


@pytest.fixture
def aliased(make_module):
    """Two modules that hold one function and one class (a package and its re-export)."""
    defining = make_module(double=_double, Model=Model)
    package = make_module(double=_double, Model=Model, Child=Child)
    return defining, package


def test_two_paths_of_one_function_tie_by_object_and_name_both(manager, registry, aliased):
    defining, package = aliased
    registry.register_rewriter(f'{defining.__name__}.double', backend='onnxruntime')(
        lambda x: 'defining')
    registry.register_rewriter(f'{package.__name__}.double', backend='onnxruntime')(
        lambda x: 'package')
    with pytest.raises(RewriterError, match=(
            rf"2 function rewriters of one target, named '{defining.__name__}.double' and "
            rf"'{package.__name__}.double' apply to backend='onnxruntime', ir='onnx' with the "
            'same precedence')):
        _applied(manager, defining, backend='onnxruntime')
    assert defining.double is _double and package.double is _double


def test_two_paths_of_one_method_tie_by_class_and_attribute(manager, registry, aliased):
    defining, package = aliased
    registry.register_rewriter(f'{defining.__name__}.Model.forward', ir='onnx')(
        lambda self, x: 'defining')
    registry.register_rewriter(f'{package.__name__}.Model.forward', ir='onnx')(
        lambda self, x: 'package')
    with pytest.raises(RewriterError, match=rf"named '{defining.__name__}.Model.forward' and "
                                            rf"'{package.__name__}.Model.forward'"):
        with RewriterContext(rewriter_manager=manager):
            pass
    assert vars(Model)['forward'] is Model.forward and Model().forward(1) == 'original'


def test_torch_function_and_its_module_alias_path_tie(manager, registry):
    registry.register_rewriter('torch.nn.functional.interpolate', backend='tensorrt')(
        lambda *args, **kwargs: 'a')
    registry.register_rewriter('torch.nn.modules.upsampling.F.interpolate', backend='tensorrt')(
        lambda *args, **kwargs: 'b')
    original = torch.nn.functional.interpolate
    with pytest.raises(RewriterError, match="one target, named 'torch.nn.functional.interpolate' "
                                            "and 'torch.nn.modules.upsampling.F.interpolate'"):
        with RewriterContext(rewriter_manager=manager, backend='tensorrt'):
            pass
    assert torch.nn.functional.interpolate is original


def test_the_more_specific_record_wins_across_paths(manager, registry, aliased):
    defining, package = aliased
    registry.register_rewriter(f'{defining.__name__}.Model.forward', backend='ncnn')(
        lambda self, x: 'ncnn')
    registry.register_rewriter(f'{package.__name__}.Model.forward')(lambda self, x: 'default')
    registry.register_rewriter(f'{package.__name__}.double', backend='ncnn')(lambda x: 'ncnn')
    registry.register_rewriter(f'{defining.__name__}.double')(lambda x: 'default')
    for backend, expected in (('ncnn', 'ncnn'), ('openvino', 'default')):
        with RewriterContext(rewriter_manager=manager, backend=backend):
            assert Model().forward(1) == expected
            assert defining.double(1) == package.double(1) == expected
    assert [r.func_name for r in registry.select('ncnn', 'onnx')] == [
        f'{defining.__name__}.Model.forward', f'{package.__name__}.double']
    assert Model().forward(1) == 'original' and defining.double is _double


def test_an_inherited_method_and_its_base_are_two_targets(manager, registry, aliased):
    _, package = aliased
    registry.register_rewriter(f'{package.__name__}.Model.forward')(lambda self, x: 'base')
    registry.register_rewriter(f'{package.__name__}.Child.forward')(lambda self, x: 'child')
    with RewriterContext(rewriter_manager=manager):
        assert (Model().forward(1), Child().forward(1)) == ('base', 'child')
    assert 'forward' not in vars(Child) and Child().forward(1) == 'original'


@pytest.mark.parametrize('target, kind', [('torch.pi', 'float'),
                                          ('torch.nn.Linear.__doc__', 'str'),
                                          ('torch.Tensor.shape', 'getset_descriptor')])
def test_a_target_that_is_not_callable_is_an_error_naming_it(manager, registry, target, kind):
    registry.register_rewriter(target)(lambda *args: 'never')
    before = torch.pi
    with pytest.raises(RewriterError, match=rf"function rewrite target '{target}' is not "
                                            rf'callable: it is {kind} '):
        with RewriterContext(rewriter_manager=manager):
            pytest.fail('the body must not run')
    assert torch.pi is before and isinstance(torch.ones(2).shape, torch.Size)
