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


@MODELS.register_module()
class SRCNN(nn.Module):
    """SRCNN on RGB images in [0, 1].

    Args:
        channels: channels of the input, the two hidden layers and the output.
        kernel_sizes: kernel sizes of the three convolutions (9-1-5 in the paper).
        upscale_factor: factor used when ``forward`` is called without one.
        residual: add the network's output to the bicubic upsample (a global residual);
            ``False`` is the original SRCNN, as in mmagic's checkpoints.
    """

    def __init__(self,
                 channels: Sequence[int] = (3, 64, 32, 3),
                 kernel_sizes: Sequence[int] = (9, 1, 5),
                 upscale_factor: float = 3.0,
                 residual: bool = False) -> None:
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

    @property
    def receptive_radius(self) -> int:
        """Output pixels, per side, that one output pixel depends on after the upsampling."""
        return sum(conv.kernel_size[0] // 2 for conv in (self.conv1, self.conv2, self.conv3))

    def forward(self, x: Tensor, upscale_factor: ScaleFactor = None) -> Tensor:
        """Upscale ``x`` (N, C, H, W) by ``upscale_factor`` (default: the constructor's)."""
        factor = self.upscale_factor if upscale_factor is None else upscale_factor
        upsampled = F.interpolate(x, scale_factor=factor, mode='bicubic', align_corners=False)
        out = self.relu(self.conv1(upsampled))
        out = self.relu(self.conv2(out))
        out = self.conv3(out)
        if self.residual:
            out = out + upsampled
        return out

    def init_identity(self) -> None:
        """Initialise so that the model starts as (close to) bicubic upsampling.

        With ``residual=True`` the last layer is zeroed, so the output is the bicubic upsample.
        Without it, small random weights plus a centre tap per channel pass the (non-negative)
        image through all three layers. Training from here converges much faster than from the
        default initialisation (measured in FACTS.md).
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
