"""A small stand-in for the OpenMMLab codebases MMDeploy rewrites (mmdet, mmocr, mmagic).

The ported rewriters in ``test_mmdeploy_port.py`` target these by dotted path, as MMDeploy's
target ``mmdet.models...`` or ``mmocr.models...``. Each piece mirrors its original's interface.
"""
from typing import Any, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def get_ir_config(deploy_cfg: Any) -> Any:
    """The IR section of a deploy config (``mmdeploy.utils.get_ir_config``'s role)."""
    return deploy_cfg.get('onnx_config', {})


def clip_bboxes(x1: Tensor, y1: Tensor, x2: Tensor, y2: Tensor,
                max_shape: Union[Tensor, Sequence[int]]):
    """Clip boxes to the image: with a Tensor ``max_shape``, by scaling to [0, 1] and back (the
    shape of ``mmdeploy.codebase.mmdet.deploy.utils.clip_bboxes``)."""
    assert len(max_shape) == 2, '`max_shape` should be [h, w]'
    if isinstance(max_shape, torch.Tensor):
        x1 = torch.clamp(x1 / max_shape[1], 0, 1) * max_shape[1]
        y1 = torch.clamp(y1 / max_shape[0], 0, 1) * max_shape[0]
        x2 = torch.clamp(x2 / max_shape[1], 0, 1) * max_shape[1]
        y2 = torch.clamp(y2 / max_shape[0], 0, 1) * max_shape[0]
    else:
        x1 = torch.clamp(x1, 0, max_shape[1])
        y1 = torch.clamp(y1, 0, max_shape[0])
        x2 = torch.clamp(x2, 0, max_shape[1])
        y2 = torch.clamp(y2, 0, max_shape[0])
    return x1, y1, x2, y2


class BoxHead(nn.Module):
    """A detection head: scores, masked scores and clipped boxes (a method rewrite target)."""

    def forward(self, boxes: Tensor, max_shape: Tensor) -> Tensor:
        x1, y1, x2, y2 = clip_bboxes(*boxes.unbind(-1), max_shape)
        return torch.stack([x1, y1, x2, y2], -1)


class PositionalEncoding(nn.Module):
    """mmocr's fixed sinusoid table, kept as a buffer of ``n_position`` rows."""

    def __init__(self, d_hid: int = 512, n_position: int = 200, dropout: float = 0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(n_position, dtype=torch.float32).unsqueeze(1)
        rate = 1.0 / torch.pow(10000, torch.arange(d_hid) // 2 * 2 / d_hid)
        table = position * rate
        table[:, 0::2] = torch.sin(table[:, 0::2])
        table[:, 1::2] = torch.cos(table[:, 1::2])
        self.register_buffer('position_table', table.unsqueeze(0))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.position_table[:, :x.size(1)].clone().detach()
        return self.dropout(x)


class SRCNNNet(nn.Module):
    """mmagic's SRCNN interface: ``channels``, ``kernel_sizes`` and ``upscale_factor``, an
    internal bicubic upsampler. Like mmagic's, it keeps neither ``channels`` nor
    ``kernel_sizes`` as attributes (this stand-in keeps no argument at all)."""

    def __init__(self, channels: Sequence[int] = (3, 64, 32, 3),
                 kernel_sizes: Sequence[int] = (9, 1, 5), upscale_factor: int = 4) -> None:
        super().__init__()
        self.img_upsampler = nn.Upsample(scale_factor=upscale_factor, mode='bicubic',
                                         align_corners=False)
        self.conv1 = nn.Conv2d(channels[0], channels[1], kernel_sizes[0],
                               padding=kernel_sizes[0] // 2)
        self.conv2 = nn.Conv2d(channels[1], channels[2], kernel_sizes[1],
                               padding=kernel_sizes[1] // 2)
        self.conv3 = nn.Conv2d(channels[2], channels[3], kernel_sizes[2],
                               padding=kernel_sizes[2] // 2)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.img_upsampler(x)
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(x)))))


class LargeSRCNNNet(SRCNNNet):
    """A subclass: the rewrite registered for :class:`SRCNNNet` must not take it silently."""


class TextRecognizer(nn.Module):
    """Encoder features, positional encoding, and a normalized, squeezed, layer-normed output."""

    def __init__(self, d_hid: int = 8, n_position: int = 16) -> None:
        super().__init__()
        self.proj = nn.Linear(d_hid, d_hid)
        self.encoding = PositionalEncoding(d_hid=d_hid, n_position=n_position)
        self.norm = nn.LayerNorm(d_hid)

    def forward(self, feats: Tensor) -> Tensor:
        x = self.encoding(self.proj(feats))                # (N, T, C)
        first, second = x.chunk(2, dim=1)                  # two halves of the sequence
        x = F.normalize(torch.cat([second, first], 1).unsqueeze(1), dim=3)  # (N, 1, T, C)
        return self.norm(x.squeeze(1))
