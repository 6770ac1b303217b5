"""Calibration data for post-training quantization: what the model sees at deploy time.

Static quantization fixes every activation's int8 range from sample runs, so the samples must
look like real requests: low-resolution images made from HR patches with the evaluation
protocol's degradation (:func:`~mmdeploy_srcnn.datasets.protocol.make_lr`, antialiased MATLAB
bicubic, uint8), at several upscale factors, each fed with its own factor and converted to the
model's input convention (colour order, value range, factor layout) read from its metadata.
Patches of one HR size at every factor give every factor the same number of output pixels, so no
factor dominates the ranges. Torch-free.
"""
import dataclasses
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from mmdeploy_srcnn.datasets.protocol import make_lr
from mmdeploy_srcnn.utils.image import to_float
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import QUALITY_SCALES

ModelInputs = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    """Model inputs for calibration and a JSON-serialisable account of how they were made.

    ``description`` is written into the quantized model's metadata, so that a file says what it
    was calibrated on.
    """

    inputs: Tuple[ModelInputs, ...]
    description: Dict[str, Any]

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError('a calibration set needs at least one sample')


def model_inputs(lr: np.ndarray, scale: float, convention: ModelConvention) -> ModelInputs:
    """One RGB uint8 H x W x 3 image and a uniform factor as the model's named inputs."""
    return convention.model_inputs(to_float(lr).transpose(2, 0, 1)[None], scale)


def make_calibration_set(images: Mapping[str, np.ndarray], convention: ModelConvention,
                         source: str, scales: Sequence[float] = QUALITY_SCALES,
                         patch: int = 96, patches_per_image: int = 2,
                         seed: int = 0) -> CalibrationSet:
    """LR samples from seeded random ``patch`` x ``patch`` HR crops of ``images``.

    Each crop is degraded at every scale in ``scales`` (by default the scales whose quality
    ``--precision auto`` checks): ``len(images) * patches_per_image * len(scales)`` samples.
    ``source`` names the images in the description (e.g. the split). Images smaller than
    ``patch`` raise ``ValueError``: a crop would not be the size asked for.
    """
    if patch < 8 or patches_per_image < 1:
        raise ValueError(f'need patch >= 8 and patches_per_image >= 1, got {patch} and '
                         f'{patches_per_image}')
    if not images or not scales:
        raise ValueError('need at least one image and one scale to calibrate on')
    rng = np.random.default_rng(seed)
    samples = []
    for name, hr in images.items():
        if min(hr.shape[:2]) < patch:
            raise ValueError(f'calibration image {name!r} ({hr.shape[1]}x{hr.shape[0]}) is '
                             f'smaller than the {patch}x{patch} patch')
        for _ in range(patches_per_image):
            top = int(rng.integers(0, hr.shape[0] - patch + 1))
            left = int(rng.integers(0, hr.shape[1] - patch + 1))
            crop = hr[top:top + patch, left:left + patch]
            for scale in scales:
                samples.append(model_inputs(make_lr(crop, scale)[1], float(scale), convention))
    description = {'images': source, 'image_names': sorted(images), 'scales': list(scales),
                   'patch': patch, 'patches_per_image': patches_per_image, 'seed': seed,
                   'samples': len(samples), 'degradation': 'datasets.protocol.make_lr'}
    return CalibrationSet(tuple(samples), description)


def builtin_calibration_set(convention: ModelConvention, **options: Any) -> CalibrationSet:
    """:func:`make_calibration_set` on the built-in *training* images (never the test split,
    on which quality is measured). Needs the ``train`` extra (the image packages)."""
    from mmdeploy_srcnn.datasets import load_split

    return make_calibration_set(load_split('train'), convention, source='builtin:train',
                                **options)
