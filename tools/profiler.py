"""Profile a deployed model: latency, throughput, achieved GFLOP/s and peak memory per engine.

    python tools/profiler.py configs/srcnn_dynamic.py --shape 256x256 --scale 3
    python tools/profiler.py work_dirs/srcnn_dynamic/end2end.onnx --backend onnxruntime

A CONFIG is exported first (into --work-dir) and PyTorch eager is measured too; a MODEL.onnx
is run on the backends only. ONNX Runtime also gets a per-node time split (its profiler), so
the share of the resize stage is visible. Exits 2 on bad input.
"""
import argparse
import json
import sys
from pathlib import Path

from mmdeploy_srcnn.utils.config import ConfigError, DictAction, load_deploy_config
from mmdeploy_srcnn.utils.fileio import atomic_write
from mmdeploy_srcnn.utils.logger import get_logger
from mmdeploy_srcnn.utils.scale import parse_scale

DEFAULT_BACKENDS = ['onnxruntime', 'openvino']


def _shape(text: str) -> tuple:
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not HEIGHTxWIDTH (e.g. 256x256)') \
            from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'{text!r}: height and width must be >= 1')
    return height, width


def _scale(text: str) -> tuple:
    try:
        return parse_scale(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive integer')
    return int(text)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('target', help='deploy config (.py) or exported model (.onnx)')
    parser.add_argument('--backend', nargs='+', default=DEFAULT_BACKENDS,
                        help='backends to measure (default: onnxruntime openvino)')
    parser.add_argument('--shape', type=_shape, default=(256, 256), metavar='HxW',
                        help='input height x width (default 256x256)')
    parser.add_argument('--scale', type=_scale, default=(3.0, 3.0), metavar='S',
                        help='upscale factor: 3, 2.5 or 2x3 (default 3)')
    parser.add_argument('--batch', type=_positive, default=1)
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs (default 2)')
    parser.add_argument('--iters', type=_positive, default=10, help='timed runs (default 10)')
    parser.add_argument('--out', type=Path, help='also write the report as JSON here')
    parser.add_argument('--work-dir', type=Path, help='export and profiler files go here '
                        '(default: work_dirs/profile_<config name>)')
    parser.add_argument('--checkpoint', help="model weights (default: the config's)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE', help='override config keys, e.g. '
                        'onnx_config.matmul_resize=False backend_config.threads=2')
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    target = Path(args.target)
    if not target.is_file():
        print(f'error: {target} not found', file=sys.stderr)
        return 2
    shape = (args.batch, 3, *args.shape)
    # Imported here so that --help and argument errors answer without loading torch.
    from mmdeploy_srcnn.apis.export import ExportError
    from mmdeploy_srcnn.apis.profile import (backend_configs, format_report, profile_config,
                                             profile_model)
    from mmdeploy_srcnn.backends import BackendError
    from mmdeploy_srcnn.models import CheckpointError
    try:
        if target.suffix == '.onnx':
            report = profile_model(target, backend_configs(args.backend), shape, args.scale,
                                   warmup=args.warmup, iters=args.iters,
                                   work_dir=args.work_dir)
        else:
            cfg = load_deploy_config(target, args.cfg_options)
            work_dir = args.work_dir or Path('work_dirs') / f'profile_{target.stem}'
            report = profile_config(cfg, work_dir, args.backend, shape, args.scale,
                                    args.warmup, args.iters,
                                    args.checkpoint or cfg.get('checkpoint'), get_logger())
    except (ConfigError, CheckpointError, BackendError, ExportError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(format_report(report))
    if args.out:
        with atomic_write(args.out, 'w') as file:
            json.dump(report.as_dict(), file, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
