"""SRCNN: architecture, factors it accepts, identity initialisation, config building."""
import pytest
import torch
import torch.nn.functional as F
from support.models import scale_aware_srcnn

from mmdeploy_srcnn.core import RewriterContext
from mmdeploy_srcnn.models import SRCNN, build_model


def test_architecture_is_9_1_5_with_64_32_filters():
    model = SRCNN()
    shapes = [tuple(conv.weight.shape) for conv in (model.conv1, model.conv2, model.conv3)]
    assert shapes == [(64, 3, 9, 9), (32, 64, 1, 1), (3, 32, 5, 5)]
    assert [conv.padding for conv in (model.conv1, model.conv2, model.conv3)] == [
        (4, 4), (0, 0), (2, 2)]
    assert sum(p.numel() for p in model.parameters()) == 20099


@pytest.mark.parametrize('factor, size', [(2, (20, 24)), (2.5, (25, 30)), ((2, 3), (20, 36)),
                                          (None, (30, 36))])
def test_eager_factors(factor, size):
    model = SRCNN(upscale_factor=3).eval()
    assert model(torch.rand(1, 3, 10, 12), factor).shape == (1, 3, *size)


def test_tensor_factor_inside_a_rewriter_context():
    model = SRCNN().eval()
    x = torch.rand(2, 3, 10, 12)
    with RewriterContext(), torch.no_grad():
        out = model(x, torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(out, model(x, (2, 3)), atol=1e-6, rtol=0)


def test_residual_identity_init_outputs_bicubic():
    model = SRCNN(residual=True)
    model.init_identity()
    x = torch.rand(1, 3, 9, 7)
    expected = F.interpolate(x, scale_factor=2.5, mode='bicubic', align_corners=False)
    torch.testing.assert_close(model(x, 2.5), expected, atol=1e-6, rtol=0)


def test_plain_identity_init_is_close_to_bicubic():
    torch.manual_seed(0)
    model = SRCNN()
    model.init_identity()
    x = torch.rand(1, 3, 16, 16)
    expected = F.interpolate(x, scale_factor=2, mode='bicubic', align_corners=False)
    # Small random weights remain so that training can break the symmetry.
    assert (model(x, 2) - expected).abs().mean() < 0.05


def test_scale_aware_biases_depend_on_the_factor():
    model = scale_aware_srcnn()
    assert sum(p.numel() for p in model.parameters()) == 20099 + 2 * 64 + 2 * 32
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        hidden = {}
        model.conv2.register_forward_hook(lambda _, inputs, __: hidden.update(x=inputs[0]))
        model(x, 2)
        upsampled = F.interpolate(x, scale_factor=2, mode='bicubic', align_corners=False)
        bias = model.scale_bias1(torch.tensor([1 / 2, 1 / 2])).view(1, -1, 1, 1)
        expected = torch.relu(model.conv1(upsampled) + bias)
    torch.testing.assert_close(hidden['x'], expected, atol=1e-5, rtol=0)
    # Scale-blind and scale-aware with zero (initial) scale weights give the same output.
    blind = SRCNN(residual=True).eval()
    blind.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        model.scale_bias1.weight.zero_()
        model.scale_bias2.weight.zero_()
        torch.testing.assert_close(model(x, 3), blind(x, 3), atol=0, rtol=0)


@pytest.mark.parametrize('factor, tensor', [((2, 3), [2.0, 3.0]), (2.5, [1.0, 1.0, 2.5, 2.5])])
def test_scale_aware_tensor_factor_matches_numbers(factor, tensor):
    model = scale_aware_srcnn()
    x = torch.rand(2, 3, 10, 12)
    with RewriterContext(), torch.no_grad():
        out = model(x, torch.tensor(tensor))
    # The dynamic resize follows ONNX Runtime, ATen differs by ~1e-6 on these larger activations.
    torch.testing.assert_close(out, model(x, factor), atol=1e-5, rtol=0)


def test_build_from_config():
    model = build_model(dict(type='SRCNN', residual=True, upscale_factor=4))
    assert isinstance(model, SRCNN) and model.residual and not model.training
    assert isinstance(build_model(dict(type=SRCNN, residual=False)), SRCNN)  # a class, as mmengine
    assert isinstance(build_model(dict(type='mmdeploy_srcnn.SRCNN')), SRCNN)  # a scoped name


def test_bad_architecture_arguments():
    with pytest.raises(ValueError, match='4 channel counts and 3 kernel sizes'):
        SRCNN(channels=(3, 64, 3))
