"""One batch of images, the same for every engine: inputs, outputs, and the work on one image.

Both engines of ``srcnn-upscale`` (the loop in this process and the Ray Data pool of
:mod:`.ray_engine`) find their inputs with :func:`collect_inputs`, pair them with outputs
with :func:`plan_jobs` and hand each image to :func:`upscale_job`, so an image is probed,
checked, decoded, upscaled and written by exactly one implementation, wherever it runs:

- the input's size is read from the file header and checked, together with the output size,
  before anything is decoded;
- outputs are published atomically, never replacing a file without ``overwrite`` (also one
  that appeared while the image was processed), so no partial output is ever left;
- a bad image is an :class:`Outcome` with a one-line message naming it (escaped with
  :func:`~mmdeploy_srcnn.utils.fileio.printable`), never an exception that stops the batch.
"""
import dataclasses
import glob
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from mmdeploy_srcnn.backends import BackendError
from mmdeploy_srcnn.utils.fileio import printable
from mmdeploy_srcnn.utils.image import (DEFAULT_MAX_BYTES, IMAGE_SUFFIXES, ImageError, probe_image,
                                        read_image, write_image)
from mmdeploy_srcnn.utils.scale import format_scale

from .upscaler import UpscaleError, Upscaler, resize_bicubic

Progress = Callable[[int, int], None]
DONE, SKIPPED, FAILED = 'done', 'skipped', 'failed'
_GLOB_CHARACTERS = frozenset('*?[')


@dataclasses.dataclass(frozen=True)
class Failure:
    """An input (or argument) that produced nothing, and why, in one printable line."""

    path: Optional[Path]
    message: str


@dataclasses.dataclass(frozen=True)
class Job:
    """One input image and the files it produces."""

    source: Path
    output: Path
    compare: Optional[Path]

    @property
    def targets(self) -> Tuple[Path, ...]:
        return (self.output,) if self.compare is None else (self.output, self.compare)


@dataclasses.dataclass(frozen=True)
class ImageSettings:
    """What every image of a batch is done with (everything but the model itself)."""

    scale: Tuple[float, float]
    max_pixels: int
    timeout: Optional[float]
    overwrite: bool
    backend: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one job: ``status`` is :data:`DONE`, :data:`SKIPPED` or :data:`FAILED`;
    ``message`` is the success line, why it was skipped, or the error."""

    status: str
    message: str


# ---- inputs --------------------------------------------------------------------------------

def read_path_list(list_file: Path, errors: List[Failure]) -> List[Path]:
    """The paths in a text file, one a line (``-``: standard input); blank lines are skipped.

    Lines are taken as bytes and decoded as the file system does, so any file name can be
    listed; relative paths are relative to the current folder, as for arguments.
    """
    try:
        if str(list_file) == '-':
            data = sys.stdin.buffer.read()
        else:
            with open(list_file, 'rb') as file:  # a FIFO is fine: `--inputs-from <(find ...)`
                data = file.read()
    except OSError as err:
        errors.append(Failure(list_file, f'{printable(list_file)}: cannot read the list of '
                                         f'inputs ({printable(err.strerror or str(err))})'))
        return []
    lines = (line.removesuffix(b'\r') for line in data.split(b'\n'))
    paths = [Path(os.fsdecode(line)) for line in lines if line.strip()]
    if not paths:
        errors.append(Failure(list_file, f'{printable(list_file)}: the list of inputs is empty'))
    return paths


def _expand_pattern(path: Path) -> Optional[List[Path]]:
    """The matches of ``path`` as a glob pattern (``**`` spans folders), or None if it is not
    one. A path that exists is never a pattern, whatever its characters."""
    text = os.fspath(path)
    if not _GLOB_CHARACTERS.intersection(text) or path.exists() or path.is_symlink():
        return None
    return [Path(match) for match in sorted(glob.glob(text, recursive=True))]


def collect_inputs(paths: Sequence[Path], errors: List[Failure],
                   patterns: bool = True) -> List[Path]:
    """Expand folders into their image files, and glob patterns into what they match
    (``patterns=False``: every path is literal, as the lines of a list file are).

    A missing path, a pattern that matches nothing or an empty folder is a :class:`Failure`.
    Files are taken as given: what they are (FIFO, device, image) is checked when read.
    """
    images = []
    for path in paths:
        name = printable(path)
        matches = _expand_pattern(path) if patterns else None
        if matches is not None:
            if not matches:
                errors.append(Failure(path, f'{name}: no file or folder matches this pattern'))
            images += collect_inputs(matches, errors)
            continue
        try:
            is_dir = path.is_dir()
            if not is_dir and not path.exists() and not path.is_symlink():
                errors.append(Failure(path, f'{name}: no such file or folder'))
                continue
            if not is_dir:
                images.append(path)
                continue
            found = sorted(child for child in path.iterdir()
                           if child.suffix.lower() in IMAGE_SUFFIXES and child.is_file()
                           and not child.name.startswith('.'))
        except OSError as err:  # e.g. a folder we may not list
            errors.append(Failure(path, f'{name}: cannot read ({err.strerror or err})'))
            continue
        if not found:
            errors.append(Failure(path, f'{name}: folder has no {", ".join(IMAGE_SUFFIXES)} '
                                        'images'))
        images += found
    return images


# ---- outputs -------------------------------------------------------------------------------

def compare_path(output: Path) -> Path:
    """Where ``--compare`` writes bicubic | model for ``output``."""
    return output.with_name(f'{output.stem}_compare{output.suffix}')


def _refusal(target: Path, inputs: Set[Path], claimed: Dict[Path, Path],
             overwrite: bool) -> Optional[str]:
    """Why ``target`` must not be written, or None."""
    name = printable(target)
    if target.suffix.lower() not in IMAGE_SUFFIXES:
        return (f'{name}: cannot write {printable(target.suffix) or "a file without a suffix"} '
                f'(use one of {", ".join(IMAGE_SUFFIXES)})')
    resolved = target.resolve()
    if resolved in inputs:
        return f'{name}: output path is also an input; choose another output'
    if resolved in claimed:
        return f'{name}: output path is also the output for {printable(claimed[resolved])}'
    if (target.exists() or target.is_symlink()) and not overwrite:
        return f'{name}: output file exists (pass --overwrite to replace it)'
    return None


def is_done(job: Job) -> bool:
    """Whether every file of ``job`` exists: outputs are published complete or not at all, and
    the comparison before the output, so an existing output means a finished image."""
    return all(target.exists() for target in job.targets)


def plan_jobs(sources: List[Path], output: Optional[Path], out_dir: Optional[Path],
              compare: bool, overwrite: bool, errors: List[Failure],
              skip_done: bool = False) -> Tuple[List[Job], List[Job]]:
    """Pair each input with its outputs; refuse unsafe outputs before any work is done.

    ``output`` names the one output of a single input, otherwise each output is ``out_dir``
    / the input's name. Returns ``(jobs, skipped)``: with ``skip_done`` (and without
    ``overwrite``) a job whose files all exist is skipped instead of refused.
    """
    inputs = {source.resolve() for source in sources}
    claimed: Dict[Path, Path] = {}
    jobs, skipped = [], []
    for source in sources:
        target = output if output is not None else out_dir / source.name
        job = Job(source, target, compare_path(target) if compare else None)
        done = skip_done and not overwrite and is_done(job)
        problem = next(filter(None, (_refusal(path, inputs, claimed, overwrite or done)
                                     for path in job.targets)), None)
        if problem:
            errors.append(Failure(source, problem))
            continue
        claimed.update((path.resolve(), source) for path in job.targets)
        (skipped if done else jobs).append(job)
    return jobs, skipped


# ---- one image -----------------------------------------------------------------------------

def process_image(upscaler: Upscaler, job: Job, settings: ImageSettings,
                  progress: Optional[Progress] = None) -> str:
    """Read, upscale and write one image (and its comparison); returns a one-line summary.

    The input's and the output's sizes are checked on the file header, before decoding.

    Raises:
        ImageError, UpscaleError, BackendError: with a message naming the file.
    """
    started = time.perf_counter()
    name = printable(job.source)
    info = probe_image(job.source, max_pixels=settings.max_pixels)
    try:
        upscaler.check_output_size((info.height, info.width), settings.scale)
    except UpscaleError as err:
        raise UpscaleError(f'{name}: {err}') from None
    image = read_image(job.source, max_pixels=settings.max_pixels, max_bytes=DEFAULT_MAX_BYTES)
    try:
        upscaled = upscaler.upscale(image, settings.scale, progress, timeout=settings.timeout)
    except (UpscaleError, BackendError) as err:
        raise type(err)(f'{name}: {err}') from None
    out_h, out_w = upscaled.shape[:2]
    if job.compare is not None:
        side_by_side = np.concatenate([resize_bicubic(image, settings.scale), upscaled], axis=1)
        write_image(job.compare, side_by_side, overwrite=settings.overwrite, consume=True)
    write_image(job.output, upscaled, overwrite=settings.overwrite, consume=True)
    scale = format_scale(settings.scale)
    scale_label = f'x{scale} (HxW)' if 'x' in scale else f'x{scale}'
    compared = '' if job.compare is None else \
        f'; bicubic | model in {printable(job.compare)}'
    return (f'upscaled {name} ({image.shape[1]}x{image.shape[0]} WxH) '
            f'{scale_label} -> {printable(job.output)} '
            f'({out_w}x{out_h} WxH) on {settings.backend} {upscaler.precision} in '
            f'{time.perf_counter() - started:.1f} s{compared}')


def upscale_job(upscaler: Upscaler, job: Job, settings: ImageSettings,
                progress: Optional[Progress] = None) -> Outcome:
    """:func:`process_image`, with a bad image turned into a failed :class:`Outcome`."""
    try:
        return Outcome(DONE, process_image(upscaler, job, settings, progress))
    except (ImageError, UpscaleError, BackendError) as err:
        return Outcome(FAILED, str(err))
    except MemoryError:
        return Outcome(FAILED, f'{printable(job.source)}: out of memory (use a smaller --tile)')
