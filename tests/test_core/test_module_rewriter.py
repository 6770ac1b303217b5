"""Module rewrites: a patched deep copy, exact-class matching, and the original's init args."""
import inspect

import mmdeploy_codebase as codebase
import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmdeploy_srcnn.core import (IR, Backend, Checker, MissingTargetWarning, RewriterError,
                                 patch_model)

SRCNN = f'{codebase.__name__}.SRCNNNet'


class Halve(nn.Module):
    """A rewrite that keeps what it was given, for the tests to inspect."""

    def __init__(self, module, deploy_cfg, **kwargs):
        super().__init__()
        self.module, self.deploy_cfg, self.kwargs = module, deploy_cfg, kwargs

    def forward(self, x):
        return self.module(x) / 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.sr = codebase.SRCNNNet(channels=(3, 4, 4, 3), kernel_sizes=(3, 1, 3),
                                    upscale_factor=2)
        self.head = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())

    def forward(self, x):
        return self.head(self.sr(x))


@pytest.fixture
def rewriter(manager):
    return manager.module_rewriter


def test_patch_model_returns_a_patched_copy_and_leaves_the_model_alone(rewriter):
    rewriter.register_rewrite_module(SRCNN)(Halve)
    model = Net().eval()
    before = {name: (type(m), m) for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    patched = rewriter.patch_model(model, dict(onnx_config=dict(opset_version=17)))
    assert patched is not model and isinstance(patched.sr, Halve)
    assert type(patched.sr.module) is codebase.SRCNNNet and patched.sr.module is not model.sr
    assert isinstance(patched.sr.deploy_cfg, Config)
    assert patched.sr.deploy_cfg.onnx_config.opset_version == 17
    assert {name: (type(m), m) for name, m in model.named_modules()} == before
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), model.head(model.sr(x) / 2), atol=0, rtol=0)


def test_only_the_exact_class_is_replaced_and_a_subclass_is_named(rewriter):
    rewriter.register_rewrite_module(SRCNN)(Halve)
    model = nn.ModuleDict(dict(plain=codebase.SRCNNNet(), large=codebase.LargeSRCNNNet()))
    with pytest.warns(UserWarning, match=r'mmdeploy_codebase.LargeSRCNNNet is a subclass of '
                                         r'mmdeploy_codebase.SRCNNNet.*not replaced'):
        patched = rewriter.patch_model(model)
    assert isinstance(patched['plain'], Halve)
    assert type(patched['large']) is codebase.LargeSRCNNNet


def test_recorded_init_arguments_reach_the_rewrite(rewriter):
    rewriter.register_rewrite_module(SRCNN)(Halve)
    init_before = dict(vars(codebase.SRCNNNet))
    with rewriter.record_init_args():
        model = Net()
        large = codebase.LargeSRCNNNet(upscale_factor=3)  # a subclass: its own args
    assert dict(vars(codebase.SRCNNNet)) == init_before  # __init__ restored exactly
    patched = rewriter.patch_model(model)
    assert patched.sr.kwargs == dict(channels=(3, 4, 4, 3), kernel_sizes=(3, 1, 3),
                                     upscale_factor=2)
    with pytest.warns(UserWarning, match='not replaced'):
        assert type(rewriter.patch_model(large)) is codebase.LargeSRCNNNet


def test_var_keyword_init_arguments_are_spread(rewriter, make_module):
    class Block(nn.Module):
        def __init__(self, width, *extra, scale=1.0, **options):
            super().__init__()

    module = make_module(Block=Block)
    rewriter.register_rewrite_module(f'{module.__name__}.Block')(Halve)
    with rewriter.record_init_args():
        block = Block(4, 'a', 'b', tag='x')
    assert rewriter.patch_model(block).kwargs == dict(width=4, extra=('a', 'b'), scale=1.0,
                                                      tag='x')


def test_a_rewrite_taking_unrecorded_init_arguments_is_refused(rewriter):
    class NeedsFactor(nn.Module):
        def __init__(self, module, cfg, upscale_factor=4):
            super().__init__()

    rewriter.register_rewrite_module(SRCNN)(NeedsFactor)
    model = codebase.SRCNNNet(upscale_factor=2)  # built outside record_init_args()
    with pytest.raises(RewriterError, match=r"<model> .*takes the original's __init__ "
                                            r'argument\(s\) upscale_factor, which were not '
                                            r'recorded; build the model inside '
                                            r'MODULE_REWRITER.record_init_args\(\)'):
        rewriter.patch_model(model)


def test_patch_model_keywords_reach_rewrites_that_declare_them(rewriter):
    class Takes(nn.Module):
        def __init__(self, module, cfg, channels=None, precision='fp32'):
            super().__init__()
            self.channels, self.precision = channels, precision

    rewriter.register_rewrite_module(SRCNN)(Takes)
    with rewriter.record_init_args():
        model = codebase.SRCNNNet(channels=(3, 4, 4, 3))
    patched = rewriter.patch_model(model, precision='fp16', unrelated=1)
    assert (patched.channels, patched.precision) == ((3, 4, 4, 3), 'fp16')
    with pytest.raises(RewriterError, match='channels given to patch_model are also recorded'):
        rewriter.patch_model(model, channels=(1, 2, 3))


def test_a_rewrite_that_cannot_take_module_and_cfg_is_refused(rewriter):
    class NoCfg(nn.Module):
        def __init__(self, module):
            super().__init__()

    rewriter.register_rewrite_module(SRCNN)(NoCfg)
    with pytest.raises(RewriterError, match=r'cannot call NoCfg\(module, cfg\)'):
        rewriter.patch_model(codebase.SRCNNNet())


def test_selection_by_backend_ir_and_checkers(rewriter):
    class Never(Checker):
        def check(self, env):
            return False

    class Default(Halve):
        pass

    class Ncnn(Halve):
        pass

    class Checked(Halve):
        pass

    rewriter.register_rewrite_module(SRCNN)(Default)
    rewriter.register_rewrite_module(SRCNN, backend=Backend.NCNN)(Ncnn)
    rewriter.register_rewrite_module(SRCNN, backend='tensorrt', extra_checkers=Never())(Checked)
    rewriter.register_rewrite_module(SRCNN, ir=IR.TORCHSCRIPT, backend='tensorrt')(Checked)
    model = codebase.SRCNNNet()
    assert type(rewriter.patch_model(model, backend='ncnn')) is Ncnn
    assert type(rewriter.patch_model(model, backend=Backend.TENSORRT)) is Default
    assert type(rewriter.patch_model(model, backend='tensorrt', ir='torchscript')) is Checked


def test_recursive_false_patches_only_the_root(rewriter):
    rewriter.register_rewrite_module(SRCNN)(Halve)
    assert type(rewriter.patch_model(Net(), recursive=False).sr) is codebase.SRCNNNet
    assert isinstance(rewriter.patch_model(codebase.SRCNNNet(), recursive=False), Halve)


def test_a_shared_submodule_is_replaced_once_and_a_patched_model_is_not_patched_again(rewriter):
    rewriter.register_rewrite_module(SRCNN)(Halve)
    shared = codebase.SRCNNNet()
    model = nn.ModuleDict(dict(a=shared, b=shared))
    patched = rewriter.patch_model(model)
    assert isinstance(patched['a'], Halve) and patched['a'] is patched['b']
    again = rewriter.patch_model(patched)
    assert type(again['a'].module) is codebase.SRCNNNet  # not Halve(Halve(...))


def test_missing_package_is_skipped_and_a_non_module_target_refused(rewriter):
    rewriter.register_rewrite_module('mmocr.models.common.modules.PositionalEncoding')(Halve)
    with pytest.warns(MissingTargetWarning, match="package 'mmocr' is not installed"):
        assert type(rewriter.patch_model(codebase.SRCNNNet())) is codebase.SRCNNNet
    rewriter.register_rewrite_module(f'{codebase.__name__}.clip_bboxes')(Halve)
    with pytest.raises(RewriterError, match=r"'mmdeploy_codebase.clip_bboxes' is not an "
                                            'nn.Module class'), \
            pytest.warns(MissingTargetWarning):
        rewriter.patch_model(codebase.SRCNNNet())


@pytest.mark.parametrize('kwargs, message', [
    (dict(backends='ncnn'), "did you mean 'backend'"),
    (dict(scope='x'), "unknown keyword 'scope'"),
])
def test_registration_refuses_unknown_keywords(rewriter, kwargs, message):
    with pytest.raises(RewriterError, match=message):
        rewriter.register_rewrite_module(SRCNN, **kwargs)


def test_registration_refuses_a_function(rewriter):
    with pytest.raises(RewriterError, match='is not a class'):
        rewriter.register_rewrite_module(SRCNN)(lambda module, cfg: module)


def test_module_level_patch_model_uses_the_shipped_registry():
    model = codebase.SRCNNNet()
    patched = patch_model(model, None, backend='onnxruntime', ir='onnx')
    assert patched is not model and type(patched) is codebase.SRCNNNet
    assert list(inspect.signature(patch_model).parameters)[:5] == [
        'model', 'cfg', 'backend', 'ir', 'recursive']


class Third(Halve):
    """A second rewrite class, told apart from Halve by its type."""


def test_module_rewrites_compete_by_class_across_paths(rewriter, make_module):
    reexport = make_module(SRCNNNet=codebase.SRCNNNet)
    alias = f'{reexport.__name__}.SRCNNNet'
    rewriter.register_rewrite_module(alias, backend='onnxruntime')(Halve)
    rewriter.register_rewrite_module(SRCNN)(Third)
    assert type(rewriter.patch_model(Net(), backend='onnxruntime').sr) is Halve
    assert type(rewriter.patch_model(Net(), backend='openvino').sr) is Third
    rewriter.register_rewrite_module(SRCNN, backend='onnxruntime')(Third)
    with pytest.raises(RewriterError, match=rf"2 module rewriters of one target, named '{alias}' "
                                            rf"and '{SRCNN}' apply to backend='onnxruntime'"):
        rewriter.patch_model(Net(), backend='onnxruntime')
