"""Registration and selection of rewrite records."""
import pytest

from mmdeploy_srcnn.core import FUNCTION_REWRITER, RewriterError


def test_register_returns_function_unchanged(registry):
    def rewrite(x):
        return x

    assert registry.register_rewriter('math.sqrt')(rewrite) is rewrite
    (record,) = registry.records()
    assert (record.func_name, record.backend, record.ir) == ('math.sqrt', 'default', 'default')
    assert record.rewriter is rewrite


def test_extra_keywords_are_kept_read_only(registry):
    registry.register_rewriter('math.sqrt', scope='record')(lambda x: x)
    (record,) = registry.records()
    assert record.extra['scope'] == 'record'
    with pytest.raises(TypeError):
        record.extra['scope'] = 'other'


def test_duplicate_registration_raises_and_names_both(registry):
    def first(x):
        return x

    def second(x):
        return x

    registry.register_rewriter('math.sqrt', backend='onnxruntime')(first)
    with pytest.raises(RewriterError, match=r"'math.sqrt'.*already registered.*first.*second"):
        registry.register_rewriter('math.sqrt', backend='onnxruntime')(second)
    assert [r.rewriter for r in registry.records()] == [first]


def test_same_target_other_backend_or_ir_is_allowed(registry):
    registry.register_rewriter('math.sqrt')(lambda x: 1)
    registry.register_rewriter('math.sqrt', backend='tensorrt')(lambda x: 2)
    registry.register_rewriter('math.sqrt', ir='torchscript')(lambda x: 3)
    assert len(registry.records()) == 3


def test_backend_record_wins_over_default_in_any_order(registry):
    registry.register_rewriter('math.sqrt', backend='tensorrt')(lambda x: 'trt')
    registry.register_rewriter('math.sqrt')(lambda x: 'default')
    registry.register_rewriter('math.floor')(lambda x: 'floor')

    def selected(backend):
        return {r.func_name: r.rewriter(0) for r in registry.select(backend, 'onnx')}

    assert selected('tensorrt') == {'math.sqrt': 'trt', 'math.floor': 'floor'}
    assert selected('onnxruntime') == {'math.sqrt': 'default', 'math.floor': 'floor'}
    assert registry.select('tensorrt', 'onnx') == registry.select('tensorrt', 'torchscript')


def test_unregister(registry):
    registry.register_rewriter('math.sqrt')(lambda x: x)
    registry.unregister_rewriter('math.sqrt')
    assert registry.records() == []
    with pytest.raises(RewriterError, match="no function rewriters registered for 'math.sqrt'"):
        registry.unregister_rewriter('math.sqrt')


@pytest.mark.parametrize('kwargs, message', [
    (dict(func_name=''), 'the target must be a non-empty string'),
    (dict(func_name='math.sqrt', backend=None), 'backend must be a non-empty string'),
    (dict(func_name='math.sqrt', ir=3), 'ir must be a non-empty string'),
])
def test_bad_registration_arguments(registry, kwargs, message):
    with pytest.raises(RewriterError, match=message):
        registry.register_rewriter(**kwargs)


def test_registering_a_non_callable_raises(registry):
    with pytest.raises(RewriterError, match='is not callable'):
        registry.register_rewriter('math.sqrt')(42)


def test_get_context_outside_a_rewriter_raises():
    with pytest.raises(RewriterError, match='outside a function rewriter'):
        FUNCTION_REWRITER.get_context()
