"""Profile a deployed model: latency, throughput, achieved GFLOP/s and peak memory per engine.

    python tools/profiler.py configs/srcnn_dynamic.py --shape 256x256 --scale 3
    python tools/profiler.py work_dirs/srcnn_dynamic/end2end.onnx --backend onnxruntime

A CONFIG is exported first (into --work-dir) and PyTorch eager is measured too; a MODEL.onnx
is run on the backends only. ONNX Runtime also gets a per-node time split (its profiler), so
the share of the resize stage is visible. The report is printed and written as JSON to
--out (default: WORK_DIR/profile.json). Exits 2 on bad input.
"""
import argparse
import json
import sys
from pathlib import Path

from mmdeploy_srcnn.apis.config import ConfigError, load_deploy_config, parse_cfg_options
from mmdeploy_srcnn.profiling.flops import FLOP_PER_MAC
from mmdeploy_srcnn.utils.cli import EXIT_USER_ERROR, OneLineArgumentParser, line_buffered_stdout
from mmdeploy_srcnn.utils.fileio import atomic_write
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale

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
    parser = OneLineArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('target', help='deploy config (.py) or exported model (.onnx)')
    parser.add_argument('--backend', nargs='+', default=DEFAULT_BACKENDS,
                        help='backends to measure (default: onnxruntime openvino)')
    parser.add_argument('--shape', type=_shape, default=(256, 256), metavar='HxW',
                        help='input height x width (default 256x256)')
    parser.add_argument('--scale', type=_scale, default=(3.0, 3.0), metavar='S',
                        help='upscale factor: 3, 2.5 or 2x3 (default 3)')
    parser.add_argument('--precision', nargs='+', default=['f32'], metavar='P',
                        help='precisions to measure, each on every --backend that runs it: '
                             'f32 (default), bf16, f16 (OpenVINO), int8 (the convolutions '
                             'quantized; a config is then quantized after export, which needs '
                             "the train extra's built-in images)")
    parser.add_argument('--batch', type=_positive, default=1,
                        help='images per run (default 1)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs (default 2)')
    parser.add_argument('--iters', type=_positive, default=10, help='timed runs (default 10)')
    parser.add_argument('--out', type=Path, help='write the report as JSON here '
                        '(default: WORK_DIR/profile.json)')
    parser.add_argument('--work-dir', type=Path, help='export, profiler files and the report '
                        'go here (default: work_dirs/profile_<config or model name>)')
    parser.add_argument('--checkpoint', type=Path, help="model weights (default: the config's)")
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='override config keys, e.g. onnx_config.matmul_resize=False '
                             'backend_config.threads=2 (unknown keys are errors)')
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    return args


def format_report(report) -> str:
    """The report as a text table, plus ONNX Runtime's node split when measured."""
    batch, _, height, width = report.output_shape
    lines = [f'{report.model}: input {"x".join(map(str, report.input_shape))} (NCHW) at '
             f'x{format_scale(report.scale)} -> output {batch}x3x{height}x{width}, '
             f'{report.flop_per_run / 1e9:.1f} GFLOP per run '
             f'({FLOP_PER_MAC * report.macs_per_output_pixel / 1e3:g} kFLOP per output pixel); '
             f'{report.iters} timed runs after {report.warmup} warm-up',
             f'{"engine":<18}{"median ms":>10}{"mean ms":>9}{"p90 ms":>9}{"min ms":>9}'
             f'{"img/s":>8}{"MP/s":>7}{"GFLOP/s":>9}{"peak RSS MB":>13}{"(+MB)":>8}']
    for result in report.engines:
        latency = result.latency
        rate = report.throughput(result)
        lines.append(f'{result.engine:<18}{1e3 * latency.median:>10.1f}{1e3 * latency.mean:>9.1f}'
                     f'{1e3 * latency.p90:>9.1f}{1e3 * latency.min:>9.1f}'
                     f'{rate["images_per_s"]:>8.2f}{rate["output_mpix_per_s"]:>7.2f}'
                     f'{rate["gflop_per_s"]:>9.1f}{result.peak_rss_mb:>13.0f}'
                     f'{result.rss_delta_mb:>+8.0f}')
    for result in report.engines:
        split = result.node_split
        if split is None:
            continue
        ops = ', '.join(f'{op} {share:.1f}%' for op, share in split.by_op.items() if share >= 0.5)
        lines.append(f'{result.engine} node time {1e3 * split.node_seconds:.1f} ms of '
                     f'{1e3 * split.run_seconds:.1f} ms per profiled run: resize stage '
                     f'{split.stages["resize"]:.1f}%, network {split.stages["network"]:.1f}% '
                     f'| {ops}')
    lines.append(f'memory: {report.memory_method}')
    return '\n'.join(lines)


def _error(message: str) -> int:
    print(f'profiler.py: error: {message}', file=sys.stderr)
    return EXIT_USER_ERROR


def main(argv=None) -> int:
    line_buffered_stdout()
    args = parse_args(argv)
    target = Path(args.target)
    if not target.is_file():
        return _error(f'{target}: no such file')
    shape = (args.batch, 3, *args.shape)
    work_dir = args.work_dir or Path('work_dirs') / f'profile_{target.stem}'
    out = args.out or work_dir / 'profile.json'
    # Imported here so that --help and argument errors answer without loading torch.
    from mmdeploy_srcnn.apis.export import ExportError
    from mmdeploy_srcnn.apis.profile import backend_configs, profile_config, profile_model
    from mmdeploy_srcnn.backends import BackendError
    from mmdeploy_srcnn.models import CheckpointError
    try:
        if target.suffix == '.onnx':
            configs = backend_configs(args.backend, precisions=args.precision)
            report = profile_model(target, configs, shape, args.scale, warmup=args.warmup,
                                   iters=args.iters, work_dir=work_dir)
        else:
            cfg = load_deploy_config(target, parse_cfg_options(args.cfg_options))
            checkpoint = args.checkpoint or (Path(cfg.checkpoint) if cfg.get('checkpoint')
                                             else None)
            if checkpoint is None:
                print('profiler.py: no checkpoint configured: timing random weights (speed '
                      'does not depend on the weights)', file=sys.stderr)
            report = profile_config(cfg, work_dir, args.backend, shape, args.scale,
                                    args.warmup, args.iters, checkpoint, args.precision)
    except (ConfigError, CheckpointError, BackendError, ExportError, ValueError) as err:
        return _error(str(err))
    print(format_report(report))
    with atomic_write(out, 'w') as file:
        json.dump(report.as_dict(), file, indent=2)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
