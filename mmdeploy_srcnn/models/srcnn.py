"""SRCNN (Dong et al., 2014): bicubic upsampling followed by a 9-1-5 convolutional network.

The model is written as ordinary PyTorch: ``forward`` calls ``F.interpolate`` with a
``scale_factor``. Eager PyTorch accepts a number or an ``(h, w)`` pair; inside a
``RewriterContext`` the factor may also be a Tensor, which is what export passes so that the
factor becomes an input of the ONNX graph.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdeploy_srcnn.registry import MODELS

ScaleFactor = Union[float, Tuple[float, float], Tensor]


def _inverse_factor(factor: ScaleFactor, like: Tensor) -> Tensor:
    """``(1 / scale_h, 1 / scale_w)`` in ``like``'s dtype; a Tensor factor is ``[scale_h,
    scale_w]`` or NCHW ``[1, 1, scale_h, scale_w]`` (both end with H, W)."""
    if isinstance(factor, Tensor):
        pair = factor[-2:]
        if pair.dtype != like.dtype:  # checked here, so that export writes no no-op Cast
            pair = pair.to(like.dtype)
    else:
        values = tuple(factor) if isinstance(factor, (tuple, list)) else (factor, factor)
        pair = torch.tensor(values, dtype=like.dtype)
    return torch.reciprocal(pair)


@MODELS.register_module()
class SRCNN(nn.Module):
    """SRCNN on RGB images in [0, 1].

    Args:
        channels: channels of the input, the two hidden layers and the output.
        kernel_sizes: kernel sizes of the three convolutions (9-1-5 in the paper).
        upscale_factor: factor used when ``forward`` is called without one.
        residual: add the network's output to the bicubic upsample (a global residual);
            ``False`` is the original SRCNN, as in mmagic's checkpoints.
        scale_aware: tell the network the upscale factor: the biases of the two hidden layers
            get a term linear in ``1 / scale`` per axis, so one set of weights can sharpen an x4
            upsample harder than an x1.5 one. The terms come from two tiny MatMuls per image;
            adding them is one pass over each hidden layer, which ONNX Runtime cannot fuse
            into its convolutions.

    The I/O contract export records (:func:`mmdeploy_srcnn.apis.export.model_convention`):
    RGB in [0, 1] (mmagic's convention), the resize first (no input-side receptive field).
    """

    color_order = 'RGB'
    value_range = (0.0, 1.0)
    input_receptive_radius = 0

    def __init__(self,
                 channels: Sequence[int] = (3, 64, 32, 3),
                 kernel_sizes: Sequence[int] = (9, 1, 5),
                 upscale_factor: float = 3.0,
                 residual: bool = False,
                 scale_aware: bool = False) -> None:
        super().__init__()
        if len(channels) != 4 or len(kernel_sizes) != 3:
            raise ValueError('SRCNN needs 4 channel counts and 3 kernel sizes, got '
                             f'channels={tuple(channels)}, kernel_sizes={tuple(kernel_sizes)}')
        self.upscale_factor = upscale_factor
        self.residual = residual
        self.conv1 = nn.Conv2d(channels[0], channels[1], kernel_sizes[0],
                               padding=kernel_sizes[0] // 2)
        self.conv2 = nn.Conv2d(channels[1], channels[2], kernel_sizes[1],
                               padding=kernel_sizes[1] // 2)
        self.conv3 = nn.Conv2d(channels[2], channels[3], kernel_sizes[2],
                               padding=kernel_sizes[2] // 2)
        self.relu = nn.ReLU()
        self.scale_aware = scale_aware
        if scale_aware:
            # Zero start: the model begins as the scale-blind one. With square training scales
            # both columns get equal updates, so the two axes stay symmetric.
            self.scale_bias1 = nn.Linear(2, channels[1], bias=False)
            self.scale_bias2 = nn.Linear(2, channels[2], bias=False)
            nn.init.zeros_(self.scale_bias1.weight)
            nn.init.zeros_(self.scale_bias2.weight)

    @property
    def receptive_radius(self) -> int:
        """Output pixels, per side, that one output pixel depends on after the upsampling."""
        return sum(conv.kernel_size[0] // 2 for conv in (self.conv1, self.conv2, self.conv3))

    def forward(self, x: Tensor, upscale_factor: ScaleFactor = None) -> Tensor:
        """Upscale ``x`` (N, C, H, W) by ``upscale_factor`` (default: the constructor's)."""
        factor = self.upscale_factor if upscale_factor is None else upscale_factor
        upsampled = F.interpolate(x, scale_factor=factor, mode='bicubic', align_corners=False)
        out = self.conv1(upsampled)
        if self.scale_aware:
            inverse = _inverse_factor(factor, x)
            out = out + self.scale_bias1(inverse).view(1, -1, 1, 1)
        out = self.conv2(self.relu(out))
        if self.scale_aware:
            out = out + self.scale_bias2(inverse).view(1, -1, 1, 1)
        out = self.conv3(self.relu(out))
        if self.residual:
            out = out + upsampled
        return out

    def init_identity(self) -> None:
        """Initialise so that the model starts as (close to) bicubic upsampling.

        With ``residual=True`` the last layer is zeroed, so the output is the bicubic upsample.
        Without it, small random weights plus a centre tap per channel pass the (non-negative)
        image through all three layers. Training from here converges much faster than from the
        default initialisation (4-minute training pilots: +0.58 dB against +0.30 dB over
        bicubic).
        """
        with torch.no_grad():
            if self.residual:
                nn.init.zeros_(self.conv3.weight)
                nn.init.zeros_(self.conv3.bias)
                return
            in_ch = self.conv1.in_channels
            if min(self.conv1.out_channels, self.conv2.out_channels) < in_ch:
                raise ValueError('identity initialisation needs hidden layers at least as wide '
                                 'as the input')
            for conv in (self.conv1, self.conv2, self.conv3):
                conv.weight.mul_(0.01)
                nn.init.zeros_(conv.bias)
                centre = conv.kernel_size[0] // 2
                for c in range(in_ch):
                    conv.weight[c, c, centre, centre] += 1.0
