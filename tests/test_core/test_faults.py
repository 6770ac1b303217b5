"""Fault injection: whatever fails, every target and alias is the very object it was before."""
import threading

import pytest

from mmdeploy_srcnn.core import RewriterContext, RewriterError
from mmdeploy_srcnn.core.rewriters import function_rewriter as patching_module


def _double(x):
    return 2 * x


def _triple(x):
    return 3 * x


class Model:
    def forward(self, x):
        return x


@pytest.fixture
def world(registry, make_module):
    """Three module functions with aliases and a class method, all rewritten."""
    owner = make_module(double=_double, triple=_triple)
    user = make_module(double=_double, triple=_triple, Model=Model)
    targets = [f'{owner.__name__}.double', f'{owner.__name__}.triple',
               f'{__name__}.Model.forward']
    for target in targets:
        registry.register_rewriter(target)(lambda *args: 'rewritten')
    before = {'owner': dict(vars(owner)), 'user': dict(vars(user)),
              'Model': dict(vars(Model))}

    def unchanged():
        return (all(vars(owner)[k] is v for k, v in before['owner'].items())
                and all(vars(user)[k] is v for k, v in before['user'].items())
                and dict(vars(Model)) == before['Model']
                and set(vars(owner)) == set(before['owner']))

    return owner, user, unchanged


@pytest.mark.parametrize('exception', [ValueError('boom'), KeyboardInterrupt()])
def test_exception_in_body(manager, registry, world, exception):
    owner, user, unchanged = world
    with pytest.raises(type(exception)):
        with RewriterContext(rewriter_manager=manager):
            assert user.double(1) == 'rewritten' and Model().forward(1) == 'rewritten'
            raise exception
    assert unchanged()


@pytest.mark.parametrize('exception', [ValueError('boom'), KeyboardInterrupt()])
def test_exception_in_rewriter(manager, registry, make_module, exception):
    owner = make_module(double=_double)
    alias = make_module(double=_double)

    @registry.register_rewriter(f'{owner.__name__}.double')
    def failing(x):
        raise exception

    with pytest.raises(type(exception)):
        with RewriterContext(rewriter_manager=manager):
            alias.double(1)
    assert owner.double is _double and alias.double is _double


@pytest.mark.parametrize('failing_call', range(6))  # 3 targets, each then its aliases
def test_failure_while_patching_the_nth_attribute(manager, registry, world, monkeypatch,
                                                  failing_call):
    """Targets and aliases are patched one setattr at a time; break each one in turn."""
    owner, user, unchanged = world
    calls = {'n': 0}
    real_replace, real_aliases = patching_module.replace, patching_module.replace_aliases

    def tick():
        if calls['n'] == failing_call:
            raise KeyboardInterrupt('injected')
        calls['n'] += 1

    def replace(*args):
        tick()
        return real_replace(*args)

    def replace_aliases(*args, **kwargs):
        tick()
        return real_aliases(*args, **kwargs)

    monkeypatch.setattr(patching_module, 'replace', replace)
    monkeypatch.setattr(patching_module, 'replace_aliases', replace_aliases)
    with pytest.raises(KeyboardInterrupt, match='injected'):
        with RewriterContext(rewriter_manager=manager):
            pytest.fail('the body must not run')
    assert unchanged()
    monkeypatch.undo()
    # The lock was released: another context can open.
    with RewriterContext(rewriter_manager=manager):
        assert owner.double(1) == 'rewritten'
    assert unchanged()


def test_failure_while_restoring_still_restores_the_rest(manager, registry, world):
    owner, user, unchanged = world
    with pytest.raises(RewriterError, match='could not restore 1 patched attribute'):
        with RewriterContext(rewriter_manager=manager) as ctx:
            first = ctx._undo[0]
            original_restore = first.restore

            def broken_restore():
                original_restore()
                raise OSError('injected restore failure')

            first.restore = broken_restore
    assert unchanged()


def test_lock_is_released_after_failures(manager, registry, world):
    owner, user, unchanged = world
    with pytest.raises(ValueError):
        with RewriterContext(rewriter_manager=manager):
            raise ValueError
    opened = threading.Event()

    def other_thread():
        with RewriterContext(rewriter_manager=manager):
            opened.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert opened.is_set() and unchanged()
