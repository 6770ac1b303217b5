"""The SR evaluation protocol: make LR from HR, upscale, score on the Y channel.

LR images are made with the MATLAB-style antialiased bicubic (:func:`imresize`) and quantised
to uint8, as SR papers do. The HR image is first cropped (top-left) so that its size is exactly
``scale`` times the LR size: for ``scale = p/q`` the LR side is rounded down to a multiple of
``q`` (2.5 = 5/2 needs an even LR side). PSNR and SSIM are measured on the Y channel with
``ceil(scale)`` border pixels shaved, for the method and for MATLAB-bicubic upscaling of the
same LR image; published bicubic baselines are reproduced this way. Torch-free.
"""
import math
from fractions import Fraction
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from mmdeploy_srcnn.utils.metrics import psnr, rgb_to_y, ssim

from .degradation import imresize

#: ``upscale(lr, scale)``: RGB uint8 H x W x 3 in, RGB uint8 out, about ``scale`` times larger.
UpscaleFn = Callable[[np.ndarray, float], np.ndarray]


def as_fraction(scale: float) -> Fraction:
    """The scale as a small fraction p/q (2.5 -> 5/2), which fixes the alignment grid."""
    fraction = Fraction(scale).limit_denominator(100)
    if fraction <= 1:
        raise ValueError(f'upscale factor must be > 1, got {scale}')
    return fraction


def as_rgb_uint8(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` as the protocol's HR input, RGB uint8 H x W x 3; a gray image is repeated into
    three equal channels (its luminance). Anything else raises ``ValueError`` naming ``name``."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'{name}: not an 8-bit RGB or gray image '
                         f'({image.dtype}, shape {image.shape})')
    return np.ascontiguousarray(image)


def make_lr(hr: np.ndarray, scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Crop ``hr`` (top-left) to a whole number of ``scale`` steps and downscale it.

    Returns ``(hr_cropped, lr)`` where ``hr_cropped`` is exactly ``scale`` times the size of
    ``lr``; ``lr`` is uint8 when ``hr`` is (quantised like a saved LR image).
    """
    fraction = as_fraction(scale)
    p, q = fraction.numerator, fraction.denominator
    lr_h, lr_w = (hr.shape[0] * q // p) // q * q, (hr.shape[1] * q // p) // q * q
    if min(lr_h, lr_w) < 1:
        raise ValueError(f'image of shape {hr.shape} is too small for scale {scale}')
    hr = hr[:lr_h * p // q, :lr_w * p // q]
    return hr, imresize(hr, output_shape=(lr_h, lr_w))


def score(output: np.ndarray, hr: np.ndarray, shave: int) -> Dict[str, float]:
    """Y-channel PSNR and SSIM of an RGB uint8 output against the HR image."""
    y_out, y_hr = rgb_to_y(output), rgb_to_y(hr)
    return {'psnr': psnr(y_out, y_hr, shave), 'ssim': ssim(y_out, y_hr, shave)}


def evaluate_image(upscale: UpscaleFn, hr: np.ndarray, scale: float) -> Dict[str, float]:
    """Scores of ``upscale`` and of MATLAB bicubic on one HR image at one scale.

    If the method's output is smaller than the cropped HR image (ONNX Resize and PyTorch round
    ``size * scale`` down, in float32 and float64 respectively), HR and the bicubic result are
    cropped to the method's output size, so both are scored on the same pixels.
    """
    hr, lr = make_lr(hr, scale)
    output = np.asarray(upscale(lr, scale))
    out_h, out_w = output.shape[:2]
    if output.dtype != np.uint8 or output.ndim != 3 or out_h > hr.shape[0] or out_w > hr.shape[1]:
        raise ValueError(f'upscaler returned {output.dtype} {output.shape} for a {lr.shape} '
                         f'input at scale {scale}; expected uint8 of at most {hr.shape}')
    bicubic = imresize(lr, output_shape=hr.shape[:2])[:out_h, :out_w]
    hr = hr[:out_h, :out_w]
    shave = math.ceil(scale)
    model, base = score(output, hr, shave), score(bicubic, hr, shave)
    return {'psnr': model['psnr'], 'ssim': model['ssim'],
            'bicubic_psnr': base['psnr'], 'bicubic_ssim': base['ssim'],
            'gain_db': model['psnr'] - base['psnr'], 'shave': shave,
            'hr_size': [out_h, out_w], 'lr_size': list(lr.shape[:2])}


def evaluate(upscale: UpscaleFn, images: Dict[str, np.ndarray],
             scales: Sequence[float]) -> List[Dict]:
    """Per-image, per-scale records of :func:`evaluate_image`, with 'image' and 'scale' keys."""
    return [{'image': name, 'scale': float(scale), **evaluate_image(upscale, hr, scale)}
            for scale in scales for name, hr in images.items()]


def average_by_scale(records: List[Dict]) -> List[Dict]:
    """Mean of the numeric scores over images, one record per scale, in scale order."""
    keys = ('psnr', 'ssim', 'bicubic_psnr', 'bicubic_ssim', 'gain_db')
    scales = sorted({record['scale'] for record in records})
    return [{'scale': scale,
             **{key: float(np.mean([r[key] for r in records if r['scale'] == scale]))
                for key in keys}}
            for scale in scales]
