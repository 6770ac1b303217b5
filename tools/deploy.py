"""Export a super-resolution model with a dynamic upscale factor and prove the export works.

    python tools/deploy.py configs/srcnn_dynamic.py

Exports the configured model to ONNX (the factor is a graph input), runs the ONNX checker and
shape inference, runs the model on the configured backend at every scale, size and batch size
of the config's ``verify`` section, compares with PyTorch, and writes into the work dir:
``end2end.onnx``, ``images/`` (input | bicubic | model for the demo image at each scale) and
``report.json``. Every input is checked before the first file is written.

exit status: 0 when every comparison passed, 1 when one failed (the table shows which),
2 on bad input (one line on stderr naming it).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from mmdeploy_srcnn.apis.config import ConfigError, load_deploy_config, parse_cfg_options
from mmdeploy_srcnn.utils.cli import EXIT_USER_ERROR, OneLineArgumentParser, line_buffered_stdout
from mmdeploy_srcnn.utils.logger import get_logger

EXIT_FAILED = 1


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='deploy config file, e.g. configs/srcnn_dynamic.py')
    parser.add_argument('--work-dir', type=Path, help='where outputs go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--img', type=Path, help="demo image for the side-by-side outputs "
                        "(default: the config's demo_image)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument('--checkpoint', type=Path,
                         help="model weights (default: the config's checkpoint)")
    weights.add_argument('--random-weights', action='store_true',
                         help='export the model with random weights instead of a checkpoint '
                              '(checks the export only; the report says so)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='override config keys, e.g. onnx_config.opset_version=13 '
                             'verify.atol=1e-5 (unknown keys are errors)')
    parser.add_argument('--compare-backends', nargs='*', metavar='BACKEND',
                        help='also run these backends (none named: every available one: '
                             'onnxruntime, openvino, reference) on the same inputs and print '
                             'a matrix of max abs differences; also set by the config\'s '
                             'verify.compare_backends')
    parser.add_argument('--log-level', default='INFO',
                        choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'],
                        help='how much progress to log (default: INFO)')
    return parser.parse_args(argv)


def format_table(rows) -> str:
    """The verification matrix as a text table, one row per case."""
    from mmdeploy_srcnn.apis.deploy import scale_label

    header = (f'{"batch":>5} {"input":>9} {"scale":>9} {"precision":>9} {"output":>16} '
              f'{"max|diff|":>10} {"PSNR dB":>8}  result')
    lines = [header, '-' * len(header)]
    for row in rows:
        diff = 'shape!' if row.max_abs_diff is None else f'{row.max_abs_diff:.2e}'
        psnr = '' if row.psnr is None else 'inf' if row.psnr == float('inf') \
            else f'{row.psnr:.1f}'
        lines.append(f'{row.batch:>5} {row.in_size[0]:>4}x{row.in_size[1]:<4} '
                     f'{scale_label(row.scale):>9} {row.precision:>9} '
                     f'{"x".join(map(str, row.backend_shape)):>16} {diff:>10} {psnr:>8}  '
                     f'{"ok" if row.passed else "FAIL"}')
    return '\n'.join(lines)


def format_comparison(comparison) -> str:
    """A matrix of max abs differences (upper triangle), like Polygraphy's comparison output."""
    engines = comparison.engines
    width = max(12, *(len(e) + 2 for e in engines))
    lines = [' ' * width + ''.join(f'{e:>{width}}' for e in engines[1:])]
    for row, first in enumerate(engines[:-1]):
        cells = []
        for column, second in enumerate(engines[1:], start=1):
            if column <= row:
                cells.append(f'{"":>{width}}')
                continue
            key = (first, second)
            if comparison.compared[key] == 0:
                text = 'n/a'
            elif comparison.shape_mismatches[key]:
                text = f'{comparison.shape_mismatches[key]} shape!'
            else:
                text = f'{comparison.max_diff[key]:.1e}'
                text += '*' if comparison.size_rule_cases[key] else ''
                text += '' if comparison.pair_passed(first, second) else ' FAIL'
            cells.append(f'{text:>{width}}')
        lines.append(f'{first:<{width}}' + ''.join(cells))
    lines.append(f'tolerances: vs pytorch {comparison.atol:g}, between backends '
                 f'{comparison.cross_backend_atol:g}; cases per pair: '
                 + ', '.join(f'{a}/{b} {n}' for (a, b), n in comparison.compared.items()))
    ambiguous = {pair: n for pair, n in comparison.size_rule_cases.items() if n}
    if ambiguous:
        lines.append('* output size differs by one pixel in '
                     + ', '.join(f'{a}/{b}: {n} case(s)' for (a, b), n in ambiguous.items())
                     + ': floor(in * scale) in float32 vs float64, which the ONNX spec leaves '
                       'open (not compared: the convolutions see another border)')
    return '\n'.join(lines)


def _error(message: str) -> int:
    print(f'deploy.py: error: {message}', file=sys.stderr)
    return EXIT_USER_ERROR


def main(argv: Optional[List[str]] = None) -> int:
    line_buffered_stdout()
    args = parse_args(argv)
    logger = get_logger(args.log_level)
    try:
        cfg = load_deploy_config(args.config, parse_cfg_options(args.cfg_options))
    except ConfigError as err:
        return _error(str(err))
    work_dir = args.work_dir or Path('work_dirs') / Path(args.config).stem
    image = args.img or (Path(cfg.demo_image) if cfg.get('demo_image') else None)
    if image is None:
        return _error('no demo image: give one with --img or set demo_image in the config')
    if args.random_weights:
        checkpoint = None
    elif args.checkpoint or cfg.get('checkpoint'):
        checkpoint = args.checkpoint or Path(cfg.checkpoint)
    else:
        return _error(f'{args.config}: no checkpoint configured: give one with --checkpoint, '
                      'or pass --random-weights to export random weights')
    compare = args.compare_backends
    if compare is None and cfg.verify.get('compare_backends'):
        compare = list(cfg.verify.compare_backends)

    # Imported here so that --help and config errors answer without loading torch.
    from mmdeploy_srcnn.apis.deploy import prepare_deploy, run_deploy, summary
    from mmdeploy_srcnn.apis.export import ExportError
    from mmdeploy_srcnn.backends import BackendError
    from mmdeploy_srcnn.models import CheckpointError
    from mmdeploy_srcnn.utils.image import ImageError
    try:
        plan = prepare_deploy(cfg, work_dir, image, checkpoint, compare, logger)
        if checkpoint is None:
            logger.warning('exporting RANDOM weights (--random-weights): the outputs are not '
                           'super-resolved images; the report says so')
        result = run_deploy(plan, logger)
    except (ConfigError, CheckpointError, BackendError, ExportError, ImageError) as err:
        return _error(str(err))
    except OSError as err:  # the work dir cannot be created or written
        return _error(f'{err.filename or work_dir}: {err.strerror or err}')
    print(format_table(result.rows))
    if result.comparison is not None:
        print(format_comparison(result.comparison))
    parts = []
    for precision, stats in summary(result.rows).items():
        worst = 'n/a' if stats['max_abs_diff'] is None else f'{stats["max_abs_diff"]:.2e}'
        parts.append(f'{precision}: {stats["cases"]} cases, {stats["failed"]} failed, max '
                     f'|diff| {worst} (atol {stats["atol"]:g})')
    logger.info(f'{"; ".join(parts)}; wrote {result.onnx_path}, {result.report_path} and '
                f'{len(result.image_paths)} images in {result.image_paths[0].parent}')
    if not result.passed:
        print('deploy.py: verification FAILED: engines disagree beyond the tolerance '
              '(see the table above)', file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == '__main__':
    sys.exit(main())
