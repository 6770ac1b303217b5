"""Image quality metrics of the standard SR evaluation, in numpy (torch-free).

Conventions: images are numpy arrays on the [0, 255] scale (uint8, or float already scaled),
H x W (one channel, e.g. the Y channel) or H x W x 3 (RGB). SR papers report PSNR/SSIM on the
Y channel of YCbCr (:func:`rgb_to_y`) with ``shave`` border pixels removed from every side,
because the borders are dominated by padding effects rather than by the method.
"""
import numpy as np

# MATLAB ``rgb2ycbcr`` (ITU-R BT.601, studio swing) for RGB in [0, 255]: Y in [16, 235].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y channel (float64, [16, 235]) of an H x W x 3 RGB image on the [0, 255] scale.

    Not rounded to integers, as in the usual Python SR evaluation code.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an H x W x 3 RGB image, got shape {image.shape}')
    return image.astype(np.float64) @ _Y_WEIGHTS + _Y_OFFSET


def _shaved(a: np.ndarray, b: np.ndarray, shave: int) -> tuple:
    if a.shape != b.shape:
        raise ValueError(f'images differ in shape: {a.shape} vs {b.shape}')
    if shave < 0 or 2 * shave >= min(a.shape[:2]):
        raise ValueError(f'cannot shave {shave} pixels from an image of shape {a.shape}')
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, shave: int = 0, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two same-shape images (inf when identical)."""
    a, b = _shaved(a, b, shave)
    mse = np.mean((a - b) ** 2)
    return float('inf') if mse == 0 else float(10.0 * np.log10(data_range ** 2 / mse))


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    kernel = np.exp(-x * x / (2.0 * sigma * sigma))
    return kernel / kernel.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering of an H x W image, keeping only fully covered pixels."""
    size = len(kernel)
    h, w = image.shape[0] - size + 1, image.shape[1] - size + 1
    rows = sum(k * image[i:i + h, :] for i, k in enumerate(kernel))
    return sum(k * rows[:, i:i + w] for i, k in enumerate(kernel))


def _ssim_channel(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    kernel = _gaussian_kernel()
    mu_a, mu_b = _filter_valid(a, kernel), _filter_valid(b, kernel)
    var_a = _filter_valid(a * a, kernel) - mu_a ** 2
    var_b = _filter_valid(b * b, kernel) - mu_b ** 2
    cov = _filter_valid(a * b, kernel) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, shave: int = 0, data_range: float = 255.0) -> float:
    """Structural similarity (Wang et al., 2004) between two same-shape images.

    11 x 11 Gaussian window with sigma 1.5, constants K1 = 0.01 and K2 = 0.03, the mean over the
    pixels where the window fits inside the (shaved) image. For H x W x C images it is the mean
    over channels.
    """
    a, b = _shaved(a, b, shave)
    if min(a.shape[:2]) < 11:
        raise ValueError(f'SSIM needs at least 11 x 11 pixels, got shape {a.shape}')
    if a.ndim == 2:
        return _ssim_channel(a, b, data_range)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], data_range)
                          for c in range(a.shape[2])]))
