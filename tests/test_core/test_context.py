"""RewriterContext: what it patches, what it gives rewriters, and that it always restores."""
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmdeploy_srcnn.core import (FUNCTION_REWRITER, REWRITER_MANAGER, MissingTargetWarning,
                                 RewriterContext, RewriterError, RewriterManager, mark)


def _double(x):
    return 2 * x


def _twice(x):
    return x + x


class Base:
    def forward(self, x):
        return x + 1

    @staticmethod
    def helper(x):
        return x + 10

    @classmethod
    def make(cls, x):
        return (cls.__name__, x)


class Child(Base):
    pass


def test_module_function_is_patched_only_inside(manager, registry, make_module):
    targets = make_module(double=_double)

    @registry.register_rewriter(f'{targets.__name__}.double')
    def double__default(x):
        return 'rewritten'

    with RewriterContext(rewriter_manager=manager) as ctx:
        assert isinstance(ctx, RewriterContext)
        assert targets.double(3) == 'rewritten'
    assert targets.double is _double
    assert targets.double(3) == 6


def test_module_level_aliases_are_patched_and_restored(manager, registry, make_module):
    targets = make_module(double=_double)
    user = make_module(double=_double, times_two=_double)  # `from targets import double as ...`

    @registry.register_rewriter(f'{targets.__name__}.double')
    def double__default(x):
        return 'rewritten'

    with RewriterContext(rewriter_manager=manager):
        assert user.double(1) == user.times_two(1) == 'rewritten'
    assert user.double is _double and user.times_two is _double


def test_torch_interpolate_alias_is_patched(manager, registry, make_module):
    user = make_module(interpolate=F.interpolate)
    original = F.interpolate

    @registry.register_rewriter('torch.nn.functional.interpolate')
    def interpolate__default(*args, **kwargs):
        return 'rewritten'

    with RewriterContext(rewriter_manager=manager):
        assert F.interpolate(torch.ones(1, 1, 2, 2), scale_factor=2) == 'rewritten'
        assert user.interpolate(torch.ones(1, 1, 2, 2), scale_factor=2) == 'rewritten'
    assert F.interpolate is original and user.interpolate is original


def test_tensor_method_is_patched_and_class_left_exactly_as_before(manager, registry):
    assert 'repeat' not in vars(torch.Tensor)  # inherited from the C base class

    @registry.register_rewriter('torch.Tensor.repeat')
    def repeat__default(self, *sizes):
        ctx = registry.get_context()
        return ctx.origin_func(self, *sizes) * 0 - 1

    with RewriterContext(rewriter_manager=manager):
        assert torch.ones(2).repeat(2).tolist() == [-1.0] * 4
    assert 'repeat' not in vars(torch.Tensor)
    assert torch.ones(2).repeat(2).tolist() == [1.0] * 4


def test_inherited_method_on_subclass(manager, registry):
    base_dict = dict(vars(Base))
    child_dict = dict(vars(Child))

    @registry.register_rewriter(f'{__name__}.Child.forward')
    def forward__default(self, x):
        return registry.get_context().origin_func(self, x) * 100

    with RewriterContext(rewriter_manager=manager):
        assert Child().forward(1) == 200
        assert Base().forward(1) == 2
    assert dict(vars(Child)) == child_dict and dict(vars(Base)) == base_dict


def test_static_and_class_methods_keep_their_kind(manager, registry):
    raw_helper = vars(Base)['helper']
    raw_make = vars(Base)['make']

    @registry.register_rewriter(f'{__name__}.Base.helper')
    def helper__default(x):
        return registry.get_context().origin_func(x) * 2

    @registry.register_rewriter(f'{__name__}.Base.make')
    def make__default(cls, x):
        return ('rewritten',) + registry.get_context().origin_func(cls, x)

    with RewriterContext(rewriter_manager=manager):
        assert Base.helper(1) == Base().helper(1) == 22
        assert Child.make(5) == ('rewritten', 'Child', 5)
    assert vars(Base)['helper'] is raw_helper and vars(Base)['make'] is raw_make


def test_get_context_exposes_origin_cfg_backend_ir_and_keywords(manager, registry, make_module):
    targets = make_module(double=_double)
    seen = {}

    @registry.register_rewriter(f'{targets.__name__}.double', backend='onnxruntime',
                                scope='record')
    def double__onnxruntime(x):
        ctx = registry.get_context()
        seen.update(origin=ctx.origin_func, cfg=ctx.cfg, backend=ctx.backend, ir=ctx.ir,
                    scope=ctx.scope, opset=ctx.opset, mode=ctx.mode)
        return ctx.origin_func(x) + 1

    cfg = Config(dict(onnx_config=dict(opset_version=17)))
    with RewriterContext(cfg, backend='onnxruntime', rewriter_manager=manager, opset=17,
                         mode='fast'):
        assert targets.double(3) == 7
    assert seen == dict(origin=_double, cfg=cfg, backend='onnxruntime', ir='onnx',
                        scope='record', opset=17, mode='fast')
    assert seen['cfg'] is cfg


def test_backend_specific_rewrite_wins(manager, registry, make_module):
    targets = make_module(double=_double)
    registry.register_rewriter(f'{targets.__name__}.double')(lambda x: 'default')
    registry.register_rewriter(f'{targets.__name__}.double', backend='tensorrt')(
        lambda x: 'tensorrt')
    with RewriterContext(rewriter_manager=manager, backend='tensorrt'):
        assert targets.double(1) == 'tensorrt'
    with RewriterContext(rewriter_manager=manager, backend='onnxruntime'):
        assert targets.double(1) == 'default'


def test_unknown_target_raises_with_its_name(manager, registry):
    registry.register_rewriter('torch.nn.functional.no_such_function')(lambda: None)
    with pytest.raises(RewriterError, match=r"'torch.nn.functional.no_such_function'.*"
                                            r"module 'torch.nn.functional' has no attribute"):
        with RewriterContext(rewriter_manager=manager):
            pass


def test_target_in_a_package_that_is_not_installed_is_skipped_with_one_warning(
        manager, registry, make_module):
    targets = make_module(double=_double)
    registry.register_rewriter('no_such_package.sub.func')(lambda: None)
    registry.register_rewriter(f'{targets.__name__}.double')(lambda x: 'rewritten')
    with pytest.warns(MissingTargetWarning) as caught:
        with RewriterContext(rewriter_manager=manager):
            assert targets.double(1) == 'rewritten'  # the other rewrites still apply
    assert [str(w.message) for w in caught] == [
        "rewrite target 'no_such_package.sub.func' skipped: package 'no_such_package' is not "
        'installed, so nothing can call it']
    assert targets.double is _double


def test_unresolvable_submodule_of_an_installed_package_raises(manager, registry):
    registry.register_rewriter('torch.no_such_module.func')(lambda: None)
    with pytest.raises(RewriterError, match="'torch.no_such_module.func': 'torch' has no "
                                            "attribute 'no_such_module'"):
        with RewriterContext(rewriter_manager=manager):
            pass


def test_restores_when_body_raises(manager, registry, make_module):
    targets = make_module(double=_double)
    registry.register_rewriter(f'{targets.__name__}.double')(lambda x: 'rewritten')
    with pytest.raises(ZeroDivisionError):
        with RewriterContext(rewriter_manager=manager):
            assert targets.double(1) == 'rewritten'
            1 / 0
    assert targets.double is _double


def test_failure_on_second_of_three_targets_restores_the_first(manager, registry, make_module):
    first = make_module(double=_double)
    third = make_module(double=_twice)  # another function object: a target of its own
    alias = make_module(double=_double)
    registry.register_rewriter(f'{first.__name__}.double')(lambda x: 'first')
    # int is an immutable built-in type: setattr on it fails.
    registry.register_rewriter('builtins.int.bit_length')(lambda self: 'never')
    registry.register_rewriter(f'{third.__name__}.double')(lambda x: 'third')

    with pytest.raises(RewriterError, match="cannot patch rewrite target 'builtins.int"):
        with RewriterContext(rewriter_manager=manager):
            pytest.fail('the body must not run')
    assert first.double is _double and third.double is _twice and alias.double is _double
    assert 'bit_length' in vars(int) and (5).bit_length() == 3


def test_unknown_second_target_restores_the_first(manager, registry, make_module):
    first = make_module(double=_double)
    registry.register_rewriter(f'{first.__name__}.double')(lambda x: 'first')
    registry.register_rewriter(f'{first.__name__}.missing')(lambda x: 'never')
    with pytest.raises(RewriterError, match='missing'):
        with RewriterContext(rewriter_manager=manager):
            pass
    assert first.double is _double


def test_nested_contexts_with_different_backends(manager, registry, make_module):
    targets = make_module(double=_double)
    name = f'{targets.__name__}.double'

    @registry.register_rewriter(name)
    def double__default(x):
        return ('default', registry.get_context().origin_func(x))

    @registry.register_rewriter(name, backend='tensorrt')
    def double__tensorrt(x):
        return ('tensorrt', registry.get_context().origin_func(x))

    with RewriterContext(rewriter_manager=manager, backend='onnxruntime'):
        outer_wrapper = targets.double
        assert targets.double(1) == ('default', 2)
        with RewriterContext(rewriter_manager=manager, backend='tensorrt'):
            # The inner rewrite wraps what the outer context installed.
            assert targets.double(1) == ('tensorrt', ('default', 2))
        assert targets.double is outer_wrapper
        assert targets.double(1) == ('default', 2)
    assert targets.double is _double


def test_origin_calling_the_patched_name_does_not_recurse(manager, registry, make_module):
    targets = make_module()

    def outer(x):
        return targets.inner(x) + 1  # looks the name up at call time: finds the patch

    def inner(x):
        return x * 10

    targets.outer, targets.inner = outer, inner
    calls = []

    @registry.register_rewriter(f'{targets.__name__}.outer')
    def outer__default(x):
        calls.append(x)
        return registry.get_context().origin_func(x)

    @registry.register_rewriter(f'{targets.__name__}.inner')
    def inner__default(x):
        calls.append(-x)
        # Calls the patched *outer*, whose rewrite is running: re-entry goes to the original.
        return targets.outer(x) if x > 0 else registry.get_context().origin_func(x)

    with RewriterContext(rewriter_manager=manager):
        assert targets.outer(2) == (2 * 10 + 1) + 1
    assert calls == [2, -2]


def test_rewriter_reentered_directly_gets_the_original(manager, registry, make_module):
    targets = make_module(double=_double)

    @registry.register_rewriter(f'{targets.__name__}.double')
    def double__default(x):
        return targets.double(x) + 1  # would recurse forever without the re-entry guard

    with RewriterContext(rewriter_manager=manager):
        assert targets.double(3) == 7


def test_reference_kept_past_exit_calls_the_original(manager, registry, make_module):
    targets = make_module(double=_double)
    registry.register_rewriter(f'{targets.__name__}.double')(lambda x: 'rewritten')
    with RewriterContext(rewriter_manager=manager):
        kept = targets.double
    assert kept is not _double and kept(4) == 8


def test_module_imported_inside_the_context_is_cleaned_up(manager, registry, make_module):
    targets = make_module(double=_double)
    registry.register_rewriter(f'{targets.__name__}.double')(lambda x: 'rewritten')
    with RewriterContext(rewriter_manager=manager):
        late = make_module(double=targets.double)  # imported while patched
        assert late.double(1) == 'rewritten'
    assert late.double is _double


def test_context_cannot_be_entered_twice(manager, registry):
    ctx = RewriterContext(rewriter_manager=manager)
    with ctx:
        with pytest.raises(RewriterError, match='already open'):
            ctx.__enter__()


def test_threads_do_not_interleave_patches(manager, registry, make_module):
    targets = make_module(double=_double)
    name = f'{targets.__name__}.double'
    registry.register_rewriter(name, backend='tensorrt')(lambda x: 'tensorrt')
    registry.register_rewriter(name, backend='ncnn')(lambda x: 'ncnn')
    events = []
    entered = threading.Event()

    def worker(backend):
        with RewriterContext(rewriter_manager=manager, backend=backend):
            events.append(('enter', backend, targets.double(0)))
            entered.set()
            time.sleep(0.05)
            events.append(('exit', backend, targets.double(0)))

    first = threading.Thread(target=worker, args=('tensorrt',))
    first.start()
    entered.wait(5)
    second = threading.Thread(target=worker, args=('ncnn',))
    second.start()
    first.join(5)
    second.join(5)
    assert events == [('enter', 'tensorrt', 'tensorrt'), ('exit', 'tensorrt', 'tensorrt'),
                      ('enter', 'ncnn', 'ncnn'), ('exit', 'ncnn', 'ncnn')]
    assert targets.double is _double


def test_get_context_by_key_finds_the_outer_rewrite(manager, registry, make_module):
    targets = make_module()
    targets.outer, targets.inner = (lambda x: targets.inner(x) + 1), (lambda x: x * 10)
    seen = {}

    @registry.register_rewriter(f'{targets.__name__}.outer', label='outer')
    def outer__default(x):
        return registry.get_context().origin_func(x)

    @registry.register_rewriter(f'{targets.__name__}.inner', label='inner')
    def inner__default(x):
        seen['own'] = registry.get_context().label
        seen['by_target'] = registry.get_context(f'{targets.__name__}.outer').label
        seen['by_name'] = registry.get_context(f'{__name__}.{outer__default.__qualname__}').label
        with pytest.raises(RewriterError, match=r"get_context\('nope'\): no running function "
                                                r"rewriter .*running: .*inner"):
            registry.get_context('nope')
        return registry.get_context().origin_func(x)

    with RewriterContext(rewriter_manager=manager):
        assert targets.outer(2) == 21
    assert seen == dict(own='inner', by_target='outer', by_name='outer')


def test_context_attributes_are_read_only_and_missing_ones_are_listed(manager, registry,
                                                                      make_module):
    targets = make_module(double=_double)
    checks = []

    @registry.register_rewriter(f'{targets.__name__}.double', scope='record')
    def double__default(x):
        ctx = registry.get_context()
        checks.append(hasattr(ctx, 'opset'))
        checks.append(getattr(ctx, 'opset', 11))
        with pytest.raises(AttributeError, match="has no attribute 'opst'; it has: origin_func, "
                                                 'cfg, backend, ir, scope'):
            ctx.opst
        with pytest.raises(AttributeError, match='read-only'):
            ctx.scope = 'other'
        return ctx.origin_func(x)

    with RewriterContext(rewriter_manager=manager):
        assert targets.double(2) == 4
    assert checks == [False, 11]


@pytest.mark.parametrize('cfg, expected', [
    (None, {}), (dict(onnx_config=dict(opset_version=13)), {'onnx_config': {'opset_version': 13}})])
def test_cfg_is_always_an_mmengine_config(manager, registry, make_module, cfg, expected):
    targets = make_module(double=_double)
    seen = []

    @registry.register_rewriter(f'{targets.__name__}.double')
    def double__default(x):
        seen.append(registry.get_context().cfg)
        return x

    with RewriterContext(cfg, rewriter_manager=manager):
        targets.double(1)
    assert isinstance(seen[0], Config) and seen[0].to_dict() == expected


def test_private_managers_do_not_share_rewrites(make_module):
    targets = make_module(double=_double)
    first, second = RewriterManager(), RewriterManager()
    first.function_rewriter.register_rewriter(f'{targets.__name__}.double')(lambda x: 'first')
    with RewriterContext(rewriter_manager=second):
        assert targets.double(1) == 2
    with RewriterContext(rewriter_manager=first):
        assert targets.double(1) == 'first'
    assert FUNCTION_REWRITER is REWRITER_MANAGER.function_rewriter
    assert all(r.func_name != f'{targets.__name__}.double' for r in FUNCTION_REWRITER.records())


def test_mark_returns_the_function_unchanged():
    def forward(x):
        return x + 1

    assert mark('head', inputs=['x'], outputs=['y'])(forward) is forward
    assert mark()(forward) is forward
