"""Speed of the deployed SRCNN against PyTorch eager and against the CPU's FLOP floor.

    python benchmarks/run_benchmarks.py [--quick] [--work-dir work_dirs/benchmarks]

One run prints (and writes to ``<work-dir>/benchmarks.json``):

(a) each engine's median latency relative to PyTorch eager, plain-Resize model and
    matmul-resize model (before/after), at 1x3x256x256 -> x3 -> 768x768;
(b) the same latencies relative to the FLOP floor: the model's FLOPs (40 kFLOP per output
    pixel) divided by a peak measured in this run (a large float32 torch matmul on 2 threads);
(c) milliseconds per output megapixel at 256x256, 512x512, 1024x1024 and 1920x1080 outputs
    (x2 from 128x128, 256x256, 512x512 and 960x540), which should be about flat;
(d) ONNX Runtime's resize-stage share of node time (its profiler), both models;
and the levers tried: ONNX Runtime threads, graph optimisation level, memory pattern and arena
(raw session options), OpenVINO's performance hint.

Not part of the test suite. Timings on a shared machine are noisy: compare ratios from the
same run, not numbers across runs.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import onnxruntime as ort
import torch

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.deploy import load_model
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.apis.profile import EngineResult, ProfileReport, profile_model, random_inputs
from mmdeploy_srcnn.backends.onnxruntime import session_options
from mmdeploy_srcnn.profiling.flops import FLOP_PER_MAC
from mmdeploy_srcnn.profiling.timing import time_runs
from mmdeploy_srcnn.utils.fileio import atomic_write
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import read_cpu_features

CONFIG = 'configs/srcnn_dynamic.py'
MAIN_SHAPE, MAIN_SCALE = (1, 3, 256, 256), (3.0, 3.0)
SIZE_SWEEP = [(128, 128), (256, 256), (512, 512), (540, 960)]  # x2 -> the four outputs
ORT, OPENVINO = {'type': 'onnxruntime'}, {'type': 'openvino'}


def cpu_description() -> str:
    """The CPU, its relevant flags and the threads torch uses here."""
    return f'{read_cpu_features().summary()}; {torch.get_num_threads()} threads'


def measure_peak_gflops(size: int = 4096, repeats: int = 3,
                        threads: Optional[int] = None) -> float:
    """Best GFLOP/s of a ``size``-cubed float32 torch matmul (``threads``: torch's default)."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand(size, size, generator=generator) for _ in range(2))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        seconds = min(time_runs(lambda: a @ b, warmup=1, iters=repeats))
    finally:
        torch.set_num_threads(previous)
    return 2 * size ** 3 / seconds / 1e9


def export_models(work_dir: Path) -> Tuple[Any, Any, Dict[str, Path]]:
    """The config's model exported twice: plain ``Resize`` and matmul resize."""
    cfgs = {name: load_deploy_config(CONFIG, {'onnx_config.matmul_resize': matmul})
            for name, matmul in (('resize', False), ('matmul', True))}
    model = load_model(cfgs['resize'], Path(cfgs['resize'].checkpoint))
    paths = {name: torch2onnx(model, cfg, work_dir / name) for name, cfg in cfgs.items()}
    return model, cfgs, paths


def raw_ort_runner(onnx_path: Path, inputs: Mapping[str, np.ndarray],
                   optimization_level: str = 'all', **attributes: Any) -> Callable[[], Any]:
    """An ORT session with arbitrary ``SessionOptions`` ``attributes`` (levers the backend
    wrapper does not expose) on top of the backend's own options."""
    options = session_options(optimization_level=optimization_level)
    for key, value in attributes.items():
        setattr(options, key, value)
    session = ort.InferenceSession(str(onnx_path), options, providers=['CPUExecutionProvider'])
    return lambda: session.run(None, dict(inputs))


def floor_seconds(report: ProfileReport, peak_gflops: float) -> float:
    return report.flop_per_run / 1e9 / peak_gflops


def engine_rows(report: ProfileReport, model: str, peak: float,
                eager_seconds: float) -> List[Dict[str, Any]]:
    rows = []
    for result in report.engines:
        median = result.latency.median
        rows.append({'model': model, 'engine': result.engine, 'options': result.options,
                     'median_ms': 1e3 * median, 'vs_eager': median / eager_seconds,
                     'vs_floor': median / floor_seconds(report, peak),
                     'gflop_per_s': report.throughput(result)['gflop_per_s'],
                     'resize_share': (result.node_split.stages['resize']
                                      if result.node_split else None)})
    return rows


def lever_rows(paths: Dict[str, Path], report: ProfileReport, peak: float, warmup: int,
               iters: int) -> List[Dict[str, Any]]:
    """Median latency of each lever setting at the main shape, relative to the floor."""
    inputs = random_inputs(ModelConvention.from_onnx(paths['resize']), MAIN_SHAPE, MAIN_SCALE)
    floor = floor_seconds(report, peak)
    rows = []
    raw = {'ORT threads=2': {'intra_op_num_threads': 2},
           'ORT level=extended': {'optimization_level': 'extended'},
           'ORT level=basic': {'optimization_level': 'basic'},
           'ORT mem_pattern=off': {'enable_mem_pattern': False},
           'ORT cpu_arena=off': {'enable_cpu_mem_arena': False},
           'ORT default (raw session)': {}}
    for model, path in paths.items():
        for lever, options in raw.items():
            seconds = time_runs(raw_ort_runner(path, inputs, **options), warmup, iters)
            rows.append({'model': model, 'lever': lever, 'median_ms': 1e3 * np.median(seconds),
                         'vs_floor': float(np.median(seconds)) / floor})
        for hint in ('LATENCY', 'THROUGHPUT'):
            for threads in (None, 2):
                config = {**OPENVINO, 'performance_hint': hint, 'threads': threads}
                one = profile_model(path, [config], MAIN_SHAPE, MAIN_SCALE, warmup, iters)
                median = one.engines[0].latency.median
                rows.append({'model': model, 'lever': f'OV {hint} threads={threads}',
                             'median_ms': 1e3 * median, 'vs_floor': median / floor})
    return rows


def size_rows(paths: Dict[str, Path], engines: List[Dict[str, Any]], warmup: int,
              iters: int) -> List[Dict[str, Any]]:
    """Milliseconds per output megapixel over output sizes, x2."""
    rows = []
    for model, path in paths.items():
        for height, width in SIZE_SWEEP:
            report = profile_model(path, engines, (1, 3, height, width), (2.0, 2.0), warmup,
                                   iters)
            for result in report.engines:
                rows.append({'model': model, 'engine': result.engine,
                             'output': f'{2 * width}x{2 * height}',
                             'ms_per_mpix': 1e3 * result.latency.median
                             / (report.output_pixels / 1e6)})
    return rows


def print_table(title: str, rows: List[Dict[str, Any]], columns: List[str]) -> None:
    print(f'\n{title}')
    width = max(14, *(len(str(row[c])) for row in rows for c in columns if not
                      isinstance(row[c], float)))
    print('  '.join(f'{c:>{width}}' for c in columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            cells.append(f'{value:>{width}.2f}' if isinstance(value, float)
                         else f'{str(value):>{width}}')
        print('  '.join(cells))


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/benchmarks'),
                        help='exports and benchmarks.json go here (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed runs before each measurement (default: %(default)s)')
    parser.add_argument('--iters', type=int, default=7,
                        help='timed runs per measurement; medians are reported '
                             '(default: %(default)s)')
    parser.add_argument('--quick', action='store_true',
                        help='2 timed runs each, no size sweep (checks that it runs)')
    args = parser.parse_args(argv)
    iters = 2 if args.quick else args.iters
    started = time.time()
    print(f'CPU: {cpu_description()}')
    peaks = [measure_peak_gflops()]  # again at the end: the best of both is the peak
    model, cfgs, paths = export_models(args.work_dir)

    reports = {}
    for name, path in paths.items():
        torch_args = ({'torch_model': model, 'deploy_cfg': cfgs[name]} if name == 'resize'
                      else {})
        reports[name] = profile_model(path, [ORT, OPENVINO], MAIN_SHAPE, MAIN_SCALE,
                                      args.warmup, iters, work_dir=args.work_dir / name,
                                      **torch_args)
        for result in reports[name].engines:
            print(f'[{name} model] {result.engine}: median '
                  f'{1e3 * result.latency.median:.1f} ms, peak RSS {result.peak_rss_mb:.0f} MB')
    eager: EngineResult = reports['resize'].engines[0]
    sizes = [] if args.quick else size_rows(paths, [ORT, OPENVINO], args.warmup, iters)
    peaks.append(measure_peak_gflops())
    peak = max(peaks)
    print(f'\nmeasured peak: {peak:.1f} GFLOP/s (float32 torch matmul 4096^3, '
          f'{torch.get_num_threads()} threads; start {peaks[0]:.1f}, end {peaks[1]:.1f})')
    floor = floor_seconds(reports['resize'], peak)
    print(f'\nFLOP floor at the measured peak: {1e3 * floor:.0f} ms '
          f'({reports["resize"].flop_per_run / 1e9:.1f} GFLOP, '
          f'{FLOP_PER_MAC * reports["resize"].macs_per_output_pixel / 1e3:g} kFLOP/pixel)')
    main_rows = [row for name, report in reports.items()
                 for row in engine_rows(report, name, peak, eager.latency.median)]
    print_table('(a)(b)(d) 1x3x256x256 -> x3 -> 768x768, medians', main_rows,
                ['model', 'engine', 'median_ms', 'vs_eager', 'vs_floor', 'gflop_per_s',
                 'resize_share'])
    levers = lever_rows(paths, reports['resize'], peak, args.warmup, iters)
    print_table('levers (same shape; vs_floor = median / FLOP floor)', levers,
                ['model', 'lever', 'median_ms', 'vs_floor'])
    if sizes:
        print_table('(c) ms per output megapixel, x2', sizes,
                    ['model', 'engine', 'output', 'ms_per_mpix'])
    results = {'cpu': cpu_description(), 'peak_gflop_per_s': peak,
               'peaks_gflop_per_s': peaks, 'floor_ms': 1e3 * floor,
               'main': main_rows, 'levers': levers, 'sizes': sizes,
               'reports': {name: report.as_dict() for name, report in reports.items()},
               'seconds': time.time() - started}
    with atomic_write(args.work_dir / 'benchmarks.json', 'w') as file:
        json.dump(results, file, indent=2, default=str)
    print(f'\nwrote {args.work_dir / "benchmarks.json"} in {results["seconds"]:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
