"""Models for tests that need trained-like weights without a checkpoint, and running them."""
import numpy as np
import torch

from mmdeploy_srcnn.apis.rewrites import deploy_context
from mmdeploy_srcnn.models import SRCNN
from mmdeploy_srcnn.utils.model_meta import ModelConvention


def scale_aware_srcnn(seed: int = 0) -> SRCNN:
    """The shipped architecture (residual, scale-aware) in eval mode, with random weights and
    scale weights of the trained size (std 0.3: the biases move by ~0.1 between scales), so that
    the factor visibly changes the hidden layers."""
    torch.manual_seed(seed)
    model = SRCNN(residual=True, scale_aware=True).eval()
    with torch.no_grad():
        model.scale_bias1.weight.normal_(std=0.3)
        model.scale_bias2.weight.normal_(std=0.3)
    return model


def run_torch(model: torch.nn.Module, image: np.ndarray, scale, cfg) -> np.ndarray:
    """``model`` on an RGB batch in [0, 1] at ``scale``, as verification runs it (the shipped
    rewrites applied, the factor a Tensor in the config's layout)."""
    convention = ModelConvention(factor_format=cfg.onnx_config.factor_format)
    inputs = convention.model_inputs(image, scale)
    with deploy_context(cfg), torch.no_grad():
        return model(torch.from_numpy(inputs['input']), torch.from_numpy(inputs['factor'])).numpy()


def run_backend(backend, image: np.ndarray, scale) -> np.ndarray:
    """The exported model on ``backend``, fed through the convention recorded in the file."""
    convention = ModelConvention.from_metadata(backend.metadata)
    return convention.rgb_output(backend.run(convention.model_inputs(image, scale)))


MODE_CASES = [('nearest', False), ('bilinear', False), ('bilinear', True),
              ('bicubic', False), ('bicubic', True)]


class AllModes(torch.nn.Module):
    """Every mode case resized by the same factor, concatenated along channels."""

    color_order, value_range, receptive_radius, input_receptive_radius = 'RGB', (0, 1), 0, 0

    def forward(self, x, factor):
        return torch.cat([torch.nn.functional.interpolate(
            x, scale_factor=factor, mode=mode, align_corners=align_corners or None)
            for mode, align_corners in MODE_CASES], dim=1)
