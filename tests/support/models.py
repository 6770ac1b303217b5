"""Models for tests that need trained-like weights without a checkpoint."""
import torch

from mmdeploy_srcnn.models import SRCNN


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
