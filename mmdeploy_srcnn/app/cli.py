"""``srcnn-upscale``: upscale images by any factor with one exported ``.onnx`` (no torch).

Every bad input (argument, image, model, refused output) is one line on stderr that names it,
with file names escaped (:func:`~mmdeploy_srcnn.utils.fileio.printable`), and exit code 2; in
a batch the other files are still processed. Image sizes are read from the file header and
checked, input and output, before anything is decoded. Outputs are written under a temporary
name and published without replacing anything that appeared meanwhile, so a failed or raced
run never leaves a partial file or clobbers one. Ctrl-C stops within about two seconds, also
inside an engine call.
"""
import argparse
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

import cv2
from mmengine.utils import ProgressBar

from mmdeploy_srcnn.backends import BackendError
from mmdeploy_srcnn.utils.cli import EXIT_USER_ERROR, OneLineArgumentParser
from mmdeploy_srcnn.utils.fileio import printable
from mmdeploy_srcnn.utils.image import IMAGE_SUFFIXES
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale

from .batch import (DONE, Failure, ImageSettings, Job, collect_inputs, plan_jobs, read_path_list,
                    upscale_job)
from .precision import AUTO
from .precision import CHOICES as PRECISION_CHOICES
from .run_summary import SUMMARY_NAME
from .tiling import DEFAULT_TILE, MIN_TILE
from .upscaler import DEFAULT_MAX_OUTPUT_PIXELS, Upscaler

PROG = 'srcnn-upscale'
EXIT_INTERRUPTED = 130
ENGINES = ('local', 'ray')
_INTEGER = re.compile(r'[0-9]+')
_DECIMAL = re.compile(r'[0-9]+(\.[0-9]*)?|\.[0-9]+')

_DESCRIPTION = """\
Upscale images with an SRCNN exported to ONNX whose upscale factor is a graph input: one model
file serves every factor (2, 3, 2.5, or height x width such as 2x3). Needs no PyTorch.

Grayscale images stay grayscale, 16-bit images stay 16-bit (in PNG and TIFF), and an alpha
channel is kept (upscaled with bicubic). The output format follows the output suffix
(.png, .tif, .webp, .bmp or .jpg). Animated and multi-page images are refused.
"""
_EPILOG = """\
examples:
  srcnn-upscale model.onnx photo.png -o photo_x2.5.png --scale 2.5
  srcnn-upscale model.onnx photo.png -o photo_2x3.png --scale 2x3   # 2x taller, 3x wider
  srcnn-upscale model.onnx photos/ --out-dir upscaled/ --scale 3 --compare
  srcnn-upscale model.onnx 'photos/**/*.jpg' --out-dir up/ --scale 2 --engine ray  # resumable

exit status: 0 when every image was written, 2 on any error (the others are still
processed), 130 when interrupted.
"""


def _scale_argument(text: str) -> Tuple[float, float]:
    """``--scale``: ``'2.5'`` -> (2.5, 2.5); ``'2x3'`` -> (2.0, 3.0) (height x width).

    A factor below 1 is refused: the model sharpens what a resize adds, and a downscale through
    it is a bicubic without antialiasing (aliased), which no verification covers.
    """
    try:
        scale = parse_scale(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if min(scale) < 1:
        raise argparse.ArgumentTypeError(f'scale {text!r} would shrink the image: this tool '
                                         'only upscales (each factor >= 1)')
    return scale


def _number(what: str, minimum: float, integer: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a plain decimal number (no '_', 'inf' or 'nan') >= ``minimum``."""
    pattern = _INTEGER if integer else _DECIMAL

    def parse(text: str) -> float:
        if not pattern.fullmatch(text.strip()):
            kind = 'an integer' if integer else 'a number'
            raise argparse.ArgumentTypeError(f'{what} must be {kind}, got {text!r}')
        value = int(text) if integer else float(text)
        if not (math.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(f'{what} must be >= {minimum:g}, got {text!r}')
        return value
    return parse


def _tile(text: str) -> Optional[int]:
    """``--tile``: 0 disables tiling, otherwise at least ``MIN_TILE`` output pixels."""
    value = int(_number('tile', 0, integer=True)(text))
    if 0 < value < MIN_TILE:
        raise argparse.ArgumentTypeError(f'tile must be 0 (off) or >= {MIN_TILE}, got {text!r}')
    return value or None


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (``--help`` explains every option)."""
    parser = OneLineArgumentParser(prog=PROG, description=_DESCRIPTION, epilog=_EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', type=Path, metavar='MODEL.onnx',
                        help='the exported model (factor as a graph input)')
    parser.add_argument('inputs', type=Path, nargs='*', metavar='INPUT',
                        help=f'image files or folders (folders: their {", ".join(IMAGE_SUFFIXES)} '
                             'files, not recursive), or glob patterns such as '
                             "'photos/**/*.jpg' (quoted; ** spans folders)")
    parser.add_argument('--inputs-from', type=Path, metavar='FILE',
                        help='also take the inputs listed in FILE, one path a line, each '
                             'taken literally (no patterns; - reads standard input)')
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('-o', '--output', type=Path, metavar='OUT',
                        help='output file, for a single input; its suffix picks the format')
    target.add_argument('--out-dir', type=Path, metavar='DIR',
                        help='write each output to DIR under its input file name')
    parser.add_argument('--scale', type=_scale_argument, required=True, metavar='S',
                        help='upscale factor >= 1: a number (2, 3, 2.5) or HEIGHTxWIDTH (2x3)')
    parser.add_argument('--tile', type=_tile, default=DEFAULT_TILE, metavar='N',
                        help=f'produce about N x N output pixels per model run to bound memory '
                             f'(about 2 KB per output pixel), with enough overlap that the '
                             f'result equals the untiled one; 0 = whole image at once '
                             f'(default: {DEFAULT_TILE})')
    parser.add_argument('--backend', default='onnxruntime', metavar='B',
                        help='inference engine: onnxruntime (default) or another registered one '
                             'such as openvino')
    parser.add_argument('--precision', choices=PRECISION_CHOICES, default=AUTO,
                        help='auto (default): the fastest precision that this CPU and engine '
                             'run faster than f32 and that loses at most 0.02 dB Y-PSNR at '
                             'every scale 1.5-4 (the table recorded in the model); f32 always '
                             'works; int8 runs the end2end_int8.onnx beside the model')
    parser.add_argument('--threads', type=_number('threads', 1, integer=True), metavar='N',
                        help=f'engine threads, at most the CPUs available ({cpu_count()} here; '
                             'default: the engine decides; with --engine ray: per worker, '
                             'default 1)')
    parser.add_argument('--timeout', type=_number('timeout', 0.001), metavar='SECONDS',
                        help='give up on an image whose model runs take longer than this '
                             '(default: no limit); Ctrl-C stops a run in any case')
    parser.add_argument('--compare', action='store_true',
                        help='also write OUTSTEM_compare.SUFFIX: bicubic (left) | model (right)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing output files (default: refuse, also when a file '
                             'appears while the image is processed; --engine ray skips them)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print nothing on success (errors are still printed)')
    parser.add_argument('--max-megapixels', type=_number('max-megapixels', 1e-6),
                        default=DEFAULT_MAX_OUTPUT_PIXELS / 1e6, metavar='M',
                        help='refuse inputs and outputs larger than M megapixels, checked on '
                             'the file header before decoding (default: %(default)g)')
    parser.add_argument('--allow-external-data', action='store_true',
                        help='let the model read weights from other files in its folder '
                             '(refused by default: a model could name any file there)')
    engines = parser.add_argument_group(
        'batch engine', 'local (default): one image after another in this process. ray: a '
        'pool of workers on Ray Data (pip install mmdeploy_srcnn[ray]), each with its own '
        'model; resumable: outputs that exist are skipped (unless --overwrite), and '
        f'DIR/{SUMMARY_NAME} lists what was done, skipped and failed')
    engines.add_argument('--engine', choices=ENGINES, default=ENGINES[0],
                         help='local or ray (default: local)')
    engines.add_argument('--ray-address', metavar='ADDR',
                         help='join the running Ray cluster at ADDR (e.g. auto or '
                              'HOST:6379; inputs, outputs and model must be at the same paths '
                              'on every node); default: start Ray on this machine only')
    engines.add_argument('--workers', type=_number('workers', 1, integer=True), metavar='N',
                         help='workers (each loads the model and uses --threads CPUs); '
                              'default and limit: the CPUs of the cluster / --threads')
    return parser


class _TileProgress:
    """A progress bar over the tiles of one large image (on stderr, so stdout stays clean;
    shown only on a terminal)."""

    MIN_TILES = 4

    def __init__(self) -> None:
        self._bar: Optional[ProgressBar] = None

    def __call__(self, done: int, total: int) -> None:
        if total < self.MIN_TILES:
            return
        if self._bar is None:
            self._bar = ProgressBar(total, file=sys.stderr)
        self._bar.update()
        if done == total:
            sys.stderr.write('\n')
            self._bar = None


def warn(message: str) -> None:
    print(f'{PROG}: warning: {message}', file=sys.stderr)


def upscaler_options(args: argparse.Namespace, threads: Optional[int]) -> Dict[str, Any]:
    """``Upscaler`` keyword arguments (all but the model path), for every engine."""
    return dict(backend=args.backend, tile=args.tile, threads=threads,
                max_output_pixels=int(args.max_megapixels * 1e6), precision=args.precision,
                allow_external_data=args.allow_external_data, for_scale=args.scale)


def image_settings(args: argparse.Namespace) -> ImageSettings:
    return ImageSettings(scale=args.scale, max_pixels=int(args.max_megapixels * 1e6),
                         timeout=args.timeout, overwrite=args.overwrite, backend=args.backend)


def _load(args: argparse.Namespace) -> Upscaler:
    """The model on its engine, with the thread count capped at the CPUs available."""
    threads = args.threads
    if threads is not None and threads > cpu_count():
        warn(f'--threads {threads} is more than the {cpu_count()} CPUs available; using '
             f'{cpu_count()}')
        threads = cpu_count()
    upscaler = Upscaler(args.model, **upscaler_options(args, threads))
    warn_about_model(args.model, upscaler)
    return upscaler


def warn_about_model(model: Path, upscaler: Upscaler) -> None:
    """Say what the loaded model leaves to a guess (how it is fed) or to a fallback (an int8
    file passed over by ``--precision auto``)."""
    for message in upscaler.precision_warnings:
        warn(message)
    if upscaler.assumed_fields:
        assumed = ', '.join(f'{name}={getattr(upscaler.convention, name)!r}'
                            for name in upscaler.assumed_fields)
        warn(f'{printable(model)} does not record how it is fed (not exported by this tool?): '
             f"assuming SRCNN's {assumed}")


def _run(jobs: List[Job], args: argparse.Namespace, errors: List[Failure],
         summaries: List[str]) -> Tuple[int, str]:
    """Process every job with a loaded ``Upscaler``; returns how many succeeded and what ran
    them (``'openvino int8'``).

    A failed image is added to ``errors`` and the batch goes on.
    """
    upscaler = _load(args)
    settings = image_settings(args)
    interactive = not args.quiet and sys.stderr.isatty()  # no bars in logs and pipes
    batch_bar = ProgressBar(len(jobs), file=sys.stderr) if len(jobs) > 1 and interactive \
        else None
    tile_progress = _TileProgress() if batch_bar is None and interactive else None
    done = 0
    for job in jobs:
        outcome = upscale_job(upscaler, job, settings, tile_progress)
        if outcome.status == DONE:
            summaries.append(outcome.message)
            done += 1
        else:
            errors.append(Failure(job.source, outcome.message))
        if batch_bar is not None:
            batch_bar.update()
    if batch_bar is not None:
        sys.stderr.write('\n')
    return done, f'{args.backend} {upscaler.precision}'


def _check_engine_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.engine != 'ray' and (args.ray_address is not None or args.workers is not None):
        parser.error('--ray-address and --workers need --engine ray')
    if args.engine == 'ray' and args.output is not None:
        parser.error('--engine ray writes into --out-dir DIR; -o/--output is for one image on '
                     'the local engine')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_engine_arguments(parser, args)
    started = time.perf_counter()
    errors: List[Failure] = []
    paths, listed = list(args.inputs), []
    if args.inputs_from is not None:
        listed = read_path_list(args.inputs_from, errors)
    elif not paths:
        parser.error('the following arguments are required: INPUT (or --inputs-from FILE)')
    if args.engine == 'ray':  # workers do not share this process's working directory
        paths, listed = [path.absolute() for path in paths], [p.absolute() for p in listed]
    # listed paths are file names, not patterns: a '*' in one is a character of the name
    sources = collect_inputs(paths, errors) + collect_inputs(listed, errors, patterns=False)
    paths += listed
    requested = len(sources) + len(errors)  # a missing input counts as a failed image
    if args.output is not None and max(len(paths), len(sources)) > 1:
        parser.error('-o/--output takes a single image; use --out-dir DIR for several')
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # errors are ours
    if args.engine == 'ray':
        try:
            from .ray_command import main_ray  # imported on use: Ray is an optional extra

            return main_ray(args, sources, errors, requested, started)
        except KeyboardInterrupt:
            print(f'\n{PROG}: interrupted (no partial output was left; a rerun resumes)',
                  file=sys.stderr)
            return EXIT_INTERRUPTED
    jobs, _ = plan_jobs(sources, args.output, args.out_dir, args.compare, args.overwrite, errors)
    summaries: List[str] = []
    done, ran_on = 0, ''
    if jobs:
        try:
            done, ran_on = _run(jobs, args, errors, summaries)
        except BackendError as err:  # the model or the engine cannot be loaded: nothing ran
            errors.append(Failure(None, str(err)))
            requested = 0
        except KeyboardInterrupt:
            print(f'\n{PROG}: interrupted (no partial output was left)', file=sys.stderr)
            return EXIT_INTERRUPTED
    print_errors(errors)
    if not args.quiet:
        if requested == 1 and summaries:
            print(summaries[0])
        elif requested > 1:
            failed = f', {requested - done} failed' if done < requested else ''
            engine = f' ({ran_on})' if ran_on else ''
            print(f'{done} of {requested} images upscaled at x{format_scale(args.scale)}'
                  f'{engine}{failed} in {time.perf_counter() - started:.1f} s')
    return EXIT_USER_ERROR if errors else 0


def print_errors(errors: List[Failure]) -> None:
    for failure in errors:
        print(f'{PROG}: error: {failure.message}', file=sys.stderr)


def entry_point() -> NoReturn:
    """The ``srcnn-upscale`` command: :func:`main`, then exit at once.

    ``os._exit`` rather than a normal interpreter exit: an engine run that ignored its
    cancellation (OpenVINO inside a Loop) would otherwise hold the process at shutdown.
    Every output has been written or removed by then, and the streams are flushed.
    """
    try:
        status = main()
    except SystemExit as exit_:  # argparse: --help, argument errors
        status = exit_.code if isinstance(exit_.code, int) else EXIT_USER_ERROR
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
