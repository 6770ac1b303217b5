"""Measure super-resolution quality (Y-channel PSNR/SSIM) against MATLAB bicubic.

    python tools/test.py CONFIG (--checkpoint PATH | --model end2end.onnx
        [--backend onnxruntime openvino] [--precision f32 bf16 int8] [--quality-table OUT])
        [--images DIR | --builtin test] [--scales 1.5 2 2.5 3 3.5 4] [--out-dir DIR]

Protocol (see ``mmdeploy_srcnn.datasets.protocol``): HR is cropped so that HR = LR x scale
exactly (for scale p/q the LR side is a multiple of q), LR is the MATLAB-style antialiased
bicubic downscale quantised to uint8, and PSNR/SSIM are taken on the Y channel (BT.601) with
ceil(scale) pixels shaved from every border; if the model's output is a pixel smaller than HR
(float32/float64 rounding of size x scale), HR and bicubic are cropped to it. Prints a table,
writes ``quality.json`` and ``quality.png`` (gain over bicubic vs scale) to ``--out-dir``.
Bad input (missing folder or file, unreadable image, scale <= 1, a checkpoint that does not
fit the config's model) gets a one-line error and exit code 2.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmdeploy_srcnn.apis.config import ConfigError, load_config
from mmdeploy_srcnn.datasets import SPLITS, load_split
from mmdeploy_srcnn.datasets.protocol import UpscaleFn, as_rgb_uint8, average_by_scale, evaluate
from mmdeploy_srcnn.utils.cli import OneLineArgumentParser, line_buffered_stdout
from mmdeploy_srcnn.utils.fileio import atomic_path, atomic_write
from mmdeploy_srcnn.utils.image import IMAGE_SUFFIXES, ImageError, from_float, read_image, to_float
from mmdeploy_srcnn.utils.precision import QUALITY_SCALES
from mmdeploy_srcnn.utils.scale import parse_scale

DEFAULT_SCALES = list(QUALITY_SCALES)  # the scales a quality table must cover


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='exit status: 0 when the evaluation ran, 2 on bad input (one line on stderr).')
    parser.add_argument('config', help='config whose `model` builds the network')
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='PyTorch checkpoint, run with PyTorch')
    model.add_argument('--model', help='exported .onnx model, run through the app '
                       '(mmdeploy_srcnn.app.upscaler) on each --backend at each --precision')
    parser.add_argument('--backend', nargs='+', default=['onnxruntime'], metavar='B',
                        help='engines for --model (default: onnxruntime)')
    parser.add_argument('--precision', nargs='+', default=['f32'], metavar='P',
                        help='precisions for --model, each on every --backend that runs it '
                             '(f32, bf16, f16, int8: the end2end_int8.onnx beside the model; '
                             'default: f32)')
    parser.add_argument('--quality-table', type=Path, metavar='OUT.json',
                        help='also write the Y-PSNR loss of each precision against f32 on the '
                             'same engine, per scale: the table --precision auto reads')
    images = parser.add_mutually_exclusive_group()
    images.add_argument('--images', help='folder of HR images')
    images.add_argument('--builtin', choices=sorted(SPLITS), default='test',
                        help='built-in split to evaluate on (default: test); its images come '
                             "from scikit-image, scikit-learn and matplotlib: pip install -e "
                             "'.[train]' (or '.[test]')")
    parser.add_argument('--scales', nargs='+', type=_scale, default=DEFAULT_SCALES,
                        metavar='S', help='upscale factors to evaluate, each > 1 '
                        f'(default: {" ".join(map(str, DEFAULT_SCALES))})')
    parser.add_argument('--out-dir', type=Path,
                        help='where quality.json and quality.png go (default: '
                             'work_dirs/test/<folder>_<name> of the checkpoint or model)')
    return parser.parse_args(argv)


def _scale(text: str) -> float:
    """A uniform factor > 1, read strictly (no '2_0')."""
    try:
        scale_h, scale_w = parse_scale(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if scale_h != scale_w or scale_h <= 1:
        raise argparse.ArgumentTypeError(f'scale {text!r} must be one number > 1')
    return float(text)


def load_folder(folder: str) -> Dict[str, np.ndarray]:
    """Every image in ``folder`` as RGB uint8 (gray repeated into RGB), keyed by file name."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f'{folder}: no such folder')
    paths = sorted(p for p in Path(folder).iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f'{folder}: no {", ".join(IMAGE_SUFFIXES)} images')
    return {path.name: as_rgb_uint8(read_image(path), str(path)) for path in paths}


def pytorch_upscaler(config: str, checkpoint: str) -> UpscaleFn:
    """Upscale with the config's model and the checkpoint's weights, in eager PyTorch, fed as
    the model declares (colour order, value range)."""
    import torch

    from mmdeploy_srcnn.apis.export import declared_convention
    from mmdeploy_srcnn.models import build_model
    from mmdeploy_srcnn.utils.model_meta import ModelConvention

    model = build_model(load_config(config).model, checkpoint)
    convention = ModelConvention(**declared_convention(model))

    def upscale(lr: np.ndarray, scale: float) -> np.ndarray:
        inputs = convention.model_inputs(to_float(lr).transpose(2, 0, 1)[None], scale)
        with torch.no_grad():
            out = model(torch.from_numpy(inputs[convention.image_input]), scale)
        rgb = convention.rgb_output({convention.output: out.numpy()})
        return from_float(rgb[0].transpose(1, 2, 0), np.uint8)

    return upscale


def onnx_upscaler(onnx_path: str, backend: str, precision: str) -> UpscaleFn:
    """Upscale with an exported model through the torch-free app."""
    from mmdeploy_srcnn.app.upscaler import Upscaler

    upscaler = Upscaler(onnx_path, backend=backend, precision=precision)
    return lambda lr, scale: upscaler.upscale(lr, scale)  # uint8 in, uint8 out


def runs_to_make(args: argparse.Namespace) -> List[Tuple[str, str]]:
    """``(engine, precision)`` pairs for --model: every precision on every engine running it."""
    from mmdeploy_srcnn.utils.precision import engine_precision_pairs

    pairs = sorted(engine_precision_pairs(args.backend, args.precision),
                   key=lambda pair: args.backend.index(pair[0]))  # engine by engine
    if args.quality_table and 'f32' not in args.precision:
        raise ValueError('--quality-table measures losses against f32: include f32 in '
                         '--precision')
    return pairs


def quality_table(runs: Dict[Tuple[str, str], List[Dict]], split: str, model: str):
    """Y-PSNR loss of each reduced precision against f32 on the same engine, per scale, with
    what it was measured on (the exported model's checkpoint hash and resize graph)."""
    from mmdeploy_srcnn.utils.model_meta import read_onnx_metadata
    from mmdeploy_srcnn.utils.precision import QualityTable

    losses: Dict[str, Dict[str, Dict[float, float]]] = {}
    for (engine, precision), per_scale in runs.items():
        reference = runs.get((engine, 'f32'))
        if precision == 'f32' or reference is None:
            continue
        f32 = {row['scale']: row['psnr'] for row in reference}
        losses.setdefault(engine, {})[precision] = {
            row['scale']: f32[row['scale']] - row['psnr'] for row in per_scale}
    metadata = read_onnx_metadata(model)
    provenance = {key: metadata[f'mmdeploy_srcnn.{key}'] for key in ('checkpoint_sha256', 'resize')
                  if f'mmdeploy_srcnn.{key}' in metadata}
    return QualityTable(losses, split=split, provenance=provenance)


def format_table(per_image: List[Dict], per_scale: List[Dict]) -> str:
    """A plain-text table: one row per image and scale, then the mean per scale."""
    header = (f'{"image":<22}{"scale":>6}{"PSNR":>9}{"bicubic":>9}{"gain":>8}'
              f'{"SSIM":>8}{"bicubic":>9}')
    row = '{:<22}{:>6.2f}{:>9.2f}{:>9.2f}{:>+8.2f}{:>8.4f}{:>9.4f}'
    lines = ['Y-channel PSNR (dB) / SSIM, ceil(scale) border pixels shaved', header]
    for r in per_image:
        lines.append(row.format(r['image'], r['scale'], r['psnr'], r['bicubic_psnr'],
                                r['gain_db'], r['ssim'], r['bicubic_ssim']))
    lines.append(header.replace('image', 'mean '))
    for r in per_scale:
        lines.append(row.format('mean', r['scale'], r['psnr'], r['bicubic_psnr'], r['gain_db'],
                                r['ssim'], r['bicubic_ssim']))
    return '\n'.join(lines)


def plot_gain(per_image: List[Dict], per_scale: List[Dict], path: Path) -> None:
    """Save a PNG of the PSNR gain over bicubic vs scale: one line per image and the mean."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    for name in dict.fromkeys(r['image'] for r in per_image):
        rows = [r for r in per_image if r['image'] == name]
        ax.plot([r['scale'] for r in rows], [r['gain_db'] for r in rows], 'o-', lw=1,
                alpha=0.6, label=name)
    ax.plot([r['scale'] for r in per_scale], [r['gain_db'] for r in per_scale], 'ks-', lw=2.5,
            label='mean')
    ax.axhline(0, color='gray', lw=0.8)
    ax.set_xlabel('upscale factor')
    ax.set_ylabel('Y-PSNR gain over MATLAB bicubic (dB)')
    ax.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)  # outside the axes: never over the data
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format='png')
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    """Evaluate, print the tables, write the JSON and the plot; 2 on bad input, else 0."""
    line_buffered_stdout()
    args = parse_args(argv)
    # Imported here so that --help answers without loading torch.
    from mmdeploy_srcnn.backends import BackendError
    from mmdeploy_srcnn.models import CheckpointError, ModelBuildError
    split = f'folder:{args.images}' if args.images else f'builtin:{args.builtin}'
    runs: Dict[Tuple[str, str], List[Dict]] = {}
    try:
        pairs = runs_to_make(args) if args.model else [('pytorch', 'f32')]
        images = load_folder(args.images) if args.images else load_split(args.builtin)
        per_image_runs = {}
        for engine, precision in pairs:
            print(f'evaluating {engine} {precision} on {len(images)} images at x'
                  f'{", x".join(f"{s:g}" for s in args.scales)} ...', file=sys.stderr)
            upscale = (pytorch_upscaler(args.config, args.checkpoint) if args.checkpoint
                       else onnx_upscaler(args.model, engine, precision))
            per_image_runs[engine, precision] = evaluate(upscale, images, args.scales)
    except (FileNotFoundError, ImageError, ValueError, CheckpointError, BackendError,
            ModelBuildError, ConfigError) as err:
        print(f'test.py: error: {err}', file=sys.stderr)
        return 2
    source = args.checkpoint or args.model
    where = Path(source)
    out_dir = args.out_dir or Path('work_dirs/test') / f'{where.parent.name}_{where.stem}'
    results = []
    for (engine, precision), per_image in per_image_runs.items():
        per_scale = runs[engine, precision] = average_by_scale(per_image)
        print(f'\n{engine} {precision}:' if args.model else '')
        print(format_table(per_image, per_scale))
        results.append({'engine': engine, 'precision': precision, 'per_scale': per_scale,
                        'per_image': per_image})
    first = results[0]
    summary = {'model': source, 'images': split,
               'metric': 'Y-channel (BT.601) PSNR/SSIM, ceil(scale) pixels shaved',
               'per_scale': first['per_scale'], 'per_image': first['per_image'],
               'runs': results}
    if len(results) > 1:
        table = quality_table(runs, split, args.model)
        summary['quality_table'] = table.to_dict()
        print('\nY-PSNR loss against f32 on the same engine (dB):')
        for engine, by_precision in table.losses.items():
            for precision, by_scale in by_precision.items():
                print(f'{engine:<12}{precision:<6}' + ''.join(
                    f'  x{scale:g} {loss:+.3f}' for scale, loss in sorted(by_scale.items())))
        if args.quality_table:
            with atomic_write(args.quality_table, 'w') as file:
                file.write(table.to_json())
            print(f'wrote {args.quality_table}')
    with atomic_write(out_dir / 'quality.json', 'w') as file:
        json.dump(summary, file, indent=2)
    plot_gain(first['per_image'], first['per_scale'], out_dir / 'quality.png')
    print(f'wrote {out_dir / "quality.json"} and {out_dir / "quality.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
