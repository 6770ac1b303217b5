"""An FSRCNN-like super-resolution net that resizes feature maps, not the image.

Written as a user would write a model for this pipeline, outside the ``mmdeploy_srcnn``
package: it registers itself into ``mmdeploy_srcnn.registry.MODELS`` when imported (a deploy
config lists this module in ``custom_imports``) and calls plain ``F.interpolate`` with the
factor it is given. Export passes the factor as a Tensor, so both resizes read it from the
graph input.

Layout, on an N x 3 x H x W image and a factor ``[scale_h, scale_w]`` or ``[1, 1, scale_h,
scale_w]``::

    LR stage   1x1 conv 3 -> features, ReLU, 1x1 conv features -> shrunk, ReLU
    resize     bilinear, of the shrunk feature maps, by the factor
    HR stage   mapping_layers x (k x k conv shrunk -> shrunk, ReLU), k x k conv shrunk -> 3
    output     bicubic resize of the image, by the factor, + the HR stage's detail

The I/O convention is part of the trained weights, so the model declares it and export
records it in the ``.onnx`` metadata: images are BGR with pixel values in [0, 255] (the OpenCV
and mmagic habit). Graph names and the factor layout belong to the deploy config.

The torch-free app cuts large images into tiles that overlap by ``receptive_radius`` output
pixels after the resize, plus the input pixels a bicubic resize reads. That is exact when every
spatial operation comes after the resize, so the LR stage is pointwise (1x1): a k x k
convolution before the resize reaches ``k // 2`` input pixels, ``k // 2 * scale`` output
pixels; where that goes beyond the resize's own taps, no single halo fits every scale.
"""
from typing import Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

from mmdeploy_srcnn.registry import MODELS

ScaleFactor = Union[float, Tuple[float, float], Tensor]
PIXEL_MAX = 255.0


@MODELS.register_module()
class FeatureResizeSR(nn.Module):
    """Super-resolution by resizing shrunk LR features and refining them at HR.

    Args:
        features: channels of the first LR feature layer.
        shrunk: channels of the resized feature maps (fewer channels, cheaper resize).
        mapping_layers: k x k convolutions at HR before the last one.
        kernel_size: odd size k of the HR convolutions.
    """

    color_order = 'BGR'
    value_range: Tuple[float, float] = (0.0, PIXEL_MAX)
    input_receptive_radius = 0  # the LR stage is pointwise

    def __init__(self, features: int = 32, shrunk: int = 12, mapping_layers: int = 2,
                 kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd and positive (symmetric padding), '
                             f'got {kernel_size}')
        if min(features, shrunk) < 1 or mapping_layers < 0:
            raise ValueError(f'features and shrunk must be >= 1 and mapping_layers >= 0, got '
                             f'{features}, {shrunk}, {mapping_layers}')
        self.lr_stage = nn.Sequential(nn.Conv2d(3, features, 1), nn.ReLU(),
                                      nn.Conv2d(features, shrunk, 1), nn.ReLU())
        layers = []
        for _ in range(mapping_layers):
            layers += [nn.Conv2d(shrunk, shrunk, kernel_size, padding=kernel_size // 2),
                       nn.ReLU()]
        layers.append(nn.Conv2d(shrunk, 3, kernel_size, padding=kernel_size // 2))
        self.hr_stage = nn.Sequential(*layers)

    @property
    def receptive_radius(self) -> int:
        """Output pixels, per side, that one output pixel depends on after the resizes: the
        HR convolutions' radii (the LR stage is pointwise and adds none)."""
        return sum(layer.kernel_size[0] // 2 for layer in self.hr_stage
                   if isinstance(layer, nn.Conv2d))

    def forward(self, x: Tensor, factor: ScaleFactor) -> Tensor:
        """Upscale ``x`` (N, 3, H, W, BGR in [0, 255]) by ``factor``; same convention out."""
        features = self.lr_stage(x / PIXEL_MAX)  # the weights work on [0, 1]
        features = F.interpolate(features, scale_factor=factor, mode='bilinear',
                                 align_corners=False)
        detail = self.hr_stage(features) * PIXEL_MAX
        return F.interpolate(x, scale_factor=factor, mode='bicubic', align_corners=False) + detail
