"""Export a super-resolution model with a dynamic upscale factor and prove the export works.

    python tools/deploy.py configs/srcnn_dynamic.py

Exports the configured model to ONNX (the factor is a graph input), runs the ONNX checker and
shape inference, runs the model on the configured backend at every scale, size and batch size
of the config's ``verify`` section, compares with PyTorch, and writes into the work dir:
``end2end.onnx``, ``images/`` (input | bicubic | model for the demo image at each scale) and
``report.json``. Exits 1 if any comparison fails, 2 on bad input.
"""
import argparse
import sys
from pathlib import Path

from mmdeploy_srcnn.utils.config import ConfigError, DictAction, load_deploy_config
from mmdeploy_srcnn.utils.logger import get_logger


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='deploy config file, e.g. configs/srcnn_dynamic.py')
    parser.add_argument('--work-dir', help='where outputs go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--img', help="demo image for the side-by-side outputs "
                        "(default: the config's demo_image)")
    parser.add_argument('--checkpoint', help="model weights (default: the config's checkpoint)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE',
                        help='override config keys, e.g. onnx_config.opset_version=13 '
                             'verify.atol=1e-5')
    parser.add_argument('--compare-backends', nargs='*', metavar='BACKEND',
                        help='also run these backends (none named: every available one: '
                             'onnxruntime, openvino, reference) on the same inputs and print '
                             'a matrix of max abs differences; also set by the config\'s '
                             'verify.compare_backends')
    parser.add_argument('--log-level', default='INFO',
                        choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'])
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logger = get_logger(args.log_level)
    try:
        cfg = load_deploy_config(args.config, args.cfg_options)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    work_dir = Path(args.work_dir or Path('work_dirs') / Path(args.config).stem)
    image = Path(args.img or cfg.get('demo_image') or '')
    if not image.is_file():
        print(f'error: demo image {str(image) or "(none)"} not found '
              '(give one with --img or set demo_image in the config)', file=sys.stderr)
        return 2
    checkpoint = args.checkpoint or cfg.get('checkpoint')
    if args.checkpoint and not Path(args.checkpoint).is_file():
        print(f'error: checkpoint {args.checkpoint} not found', file=sys.stderr)
        return 2

    # Imported here so that --help and config errors answer without loading torch.
    from mmdeploy_srcnn.apis.deploy import format_table, run_deploy, summary
    from mmdeploy_srcnn.apis.export import ExportError
    from mmdeploy_srcnn.apis.verify import format_comparison
    from mmdeploy_srcnn.backends import BackendError
    from mmdeploy_srcnn.models import CheckpointError
    from mmdeploy_srcnn.utils.image import ImageError
    compare = args.compare_backends
    if compare is None and cfg.verify.get('compare_backends'):
        compare = list(cfg.verify.compare_backends)
    try:
        result = run_deploy(cfg, work_dir, image, checkpoint, logger, compare=compare)
    except (ConfigError, CheckpointError, BackendError, ExportError, ImageError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(format_table(result.rows))
    if result.comparison is not None:
        print(format_comparison(result.comparison))
    stats = summary(result.rows)
    logger.info(f'{stats["cases"]} cases, {stats["failed"]} failed, max |diff| '
                f'{stats["max_abs_diff"]:.2e} (atol {cfg.verify.atol:g}); wrote '
                f'{result.onnx_path}, {result.report_path} and {len(result.image_paths)} images '
                f'in {result.image_paths[0].parent}')
    if not result.passed:
        logger.error('verification FAILED: engines disagree beyond the tolerance (see above)')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
