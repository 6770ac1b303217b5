"""Random aligned LR/HR training patches at many upscale factors, from pre-computed pools.

Downscaling with the MATLAB-style kernel is too slow to do per sample, so each source image is
downscaled once per training scale up front, by :func:`make_lr` as in evaluation. A scale
``s = p/q`` maps LR pixel ``i`` onto HR pixels ``[i*s, (i+1)*s)``; patches start at LR
positions that are multiples of ``q`` and span a multiple of ``q`` LR pixels, so their HR
counterparts start and end on whole pixels and the pair is exactly aligned. Torch-free: batches
are numpy float32 NCHW in [0, 1].
"""
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .protocol import as_fraction, make_lr


def _to_batch(patches: List[np.ndarray]) -> np.ndarray:
    """uint8 H x W x 3 patches to one float32 N x 3 x H x W array in [0, 1]."""
    return np.stack(patches).transpose(0, 3, 1, 2).astype(np.float32) / 255.0


@dataclass
class _Pool:
    """One scale's LR/HR image pairs and the patch geometry used at that scale."""

    scale: Fraction
    pairs: List[Tuple[np.ndarray, np.ndarray]]
    lr_patch: int

    @property
    def hr_patch(self) -> int:
        return int(self.lr_patch * self.scale)


class PairSampler:
    """Draws batches of aligned (LR, HR) patches, one scale per batch.

    Args:
        images: RGB uint8 H x W x 3 source images (the HR ground truth).
        scales: upscale factors to train on; each needs one downscaled copy of every image.
        scale_weights: relative chance of drawing each scale (default: uniform).
        patch_size: the HR patch side; it is rounded down per scale to keep alignment.
        min_std: patches whose HR standard deviation (on [0, 1]) is below this are redrawn
            (flat sky or black background teach nothing).
        seed: seed of the sampler's own random generator.
    """

    def __init__(self, images: Sequence[np.ndarray], scales: Sequence[float],
                 scale_weights: Optional[Sequence[float]] = None, patch_size: int = 96,
                 min_std: float = 0.0, seed: int = 0) -> None:
        weights = (np.ones(len(scales)) if scale_weights is None
                   else np.asarray(scale_weights, dtype=float))
        if len(weights) != len(scales) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError('scale_weights must be non-negative, one per scale, not all zero')
        self.scale_probabilities = weights / weights.sum()
        self.min_std = min_std
        self.rng = np.random.default_rng(seed)
        self.pools = [self._make_pool(images, as_fraction(s), patch_size) for s in scales]

    @staticmethod
    def _make_pool(images: Sequence[np.ndarray], scale: Fraction, patch_size: int) -> _Pool:
        q = scale.denominator
        lr_patch = int(patch_size / scale) // q * q
        if lr_patch < q:
            raise ValueError(f'patch size {patch_size} is too small for scale {float(scale)}')
        pairs = [pair for pair in (make_lr(image, float(scale)) for image in images)
                 if min(pair[1].shape[:2]) >= lr_patch]
        if not pairs:
            raise ValueError(f'no image is large enough for {patch_size} px patches at '
                             f'scale {float(scale)}')
        return _Pool(scale, pairs, lr_patch)

    def _patch(self, pool: _Pool) -> Tuple[np.ndarray, np.ndarray]:
        # Every image equally likely: by area, a few large smooth images (retina, hubble)
        # would dominate the batches.
        hr, lr = pool.pairs[self.rng.integers(len(pool.pairs))]
        q, size = pool.scale.denominator, pool.lr_patch
        top = self.rng.integers(0, (lr.shape[0] - size) // q + 1) * q
        left = self.rng.integers(0, (lr.shape[1] - size) // q + 1) * q
        hr_top, hr_left = int(top * pool.scale), int(left * pool.scale)
        lr_patch = lr[top:top + size, left:left + size]
        hr_patch = hr[hr_top:hr_top + pool.hr_patch, hr_left:hr_left + pool.hr_patch]
        return lr_patch, hr_patch

    def _augment(self, lr: np.ndarray, hr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Apply one of the 8 flips/rotations of the square to both patches."""
        rotations, flip = self.rng.integers(4), self.rng.integers(2)
        lr, hr = np.rot90(lr, rotations), np.rot90(hr, rotations)
        return (lr[:, ::-1], hr[:, ::-1]) if flip else (lr, hr)

    @property
    def scales(self) -> List[float]:
        return [float(pool.scale) for pool in self.pools]

    def sample(self, batch_size: int,
               scale: Optional[float] = None) -> Tuple[float, np.ndarray, np.ndarray]:
        """Draw one batch: ``(scale, lr, hr)`` with float32 N x 3 x h x w arrays in [0, 1].

        The scale is drawn with ``scale_weights`` unless one of the sampler's scales is given.
        """
        if scale is None:
            pool = self.pools[self.rng.choice(len(self.pools), p=self.scale_probabilities)]
        elif scale in self.scales:
            pool = self.pools[self.scales.index(scale)]
        else:
            raise ValueError(f'scale {scale} is not one of the sampler\'s {self.scales}')
        lrs, hrs = [], []
        while len(lrs) < batch_size:
            lr, hr = self._patch(pool)
            if self.min_std and hr.std() / 255.0 < self.min_std:
                continue
            lr, hr = self._augment(lr, hr)
            lrs.append(lr)
            hrs.append(hr)
        return float(pool.scale), _to_batch(lrs), _to_batch(hrs)
