"""Speed per engine and precision (f32, bf16, f16, int8), each against its own matmul peak.

    python benchmarks/precision_speed.py [--models work_dirs/srcnn_dynamic/end2end.onnx ...]
        [--rounds 9] [--work-dir work_dirs/benchmarks/int8]

For each float model (default: the matmul-resize and the plain-Resize exports of
``tools/deploy.py``) the script writes ``end2end_int8.onnx`` with the default settings of
:func:`mmdeploy_srcnn.quantization.quantize_int8`, then times 1x3x256x256 -> x3 (768x768) on

- ONNX Runtime: f32 (float file), int8 (int8 file);
- OpenVINO: f32, bf16 and f16 (float file with that ``INFERENCE_PRECISION_HINT``), int8 (int8
  file, f32 hint: the convolutions run in int8, everything else in f32).

Rounds are interleaved (every configuration once per round, after 2 warm-up runs each), so a
load change on a shared machine hits all of them alike. The table gives the median over rounds;
``vs f32``, the median over rounds of the time divided by the same engine's f32 time in that
round; ``vs ORT f32``, the same against ONNX Runtime f32 (the app's default engine). The FLOP
floor of a row is the model's convolution work divided by the peak of a 2048^3 matmul of the
same engine and precision, measured in the same run (best of 5, before and after the rounds):
ONNX Runtime MatMul (f32) and MatMulInteger (u8 x s8 -> s32); OpenVINO MatMul under each
precision hint, and a QDQ MatMul for int8. OpenVINO's kernel names for each matmul and
convolution (from its execution graph) show the precision that really ran. Not part of the
test suite.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
from onnx import TensorProto, helper, numpy_helper

from mmdeploy_srcnn.backends.onnxruntime import session_options
from mmdeploy_srcnn.profiling.flops import FLOP_PER_MAC, conv_macs_per_output_pixel
from mmdeploy_srcnn.quantization import builtin_calibration_set, quantize_int8
from mmdeploy_srcnn.utils.fileio import atomic_write
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import read_cpu_features

DEFAULT_MODELS = ('work_dirs/srcnn_dynamic/end2end.onnx',
                  'work_dirs/srcnn_dynamic_resize/end2end.onnx')
SHAPE, SCALE = (1, 3, 256, 256), 3.0
PEAK_SIZE = 2048
OV_FLOAT_HINTS = ('f32', 'bf16', 'f16')
Runner = Callable[[], object]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        help='float .onnx files exported by tools/deploy.py')
    parser.add_argument('--rounds', type=int, default=9, help='timed rounds (>= 7)')
    parser.add_argument('--work-dir', default='work_dirs/benchmarks/precision')
    args = parser.parse_args()
    if args.rounds < 7:
        parser.error('--rounds must be at least 7')
    return args


def ort_runner(model: onnx.ModelProto, feed: Dict[str, np.ndarray]) -> Runner:
    session = ort.InferenceSession(model.SerializeToString(), session_options(),
                                   providers=['CPUExecutionProvider'])
    return lambda: session.run(None, feed)


def ov_compile(model: onnx.ModelProto, hint: str) -> ov.CompiledModel:
    core = ov.Core()
    return core.compile_model(core.read_model(model.SerializeToString()), 'CPU',
                              {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': hint})


def ov_runner(compiled: ov.CompiledModel, feed: Dict[str, np.ndarray]) -> Runner:
    request = compiled.create_infer_request()
    return lambda: request.infer(feed)


def ov_kernels(compiled: ov.CompiledModel, layer_types: Tuple[str, ...]) -> List[str]:
    """OpenVINO's kernel names (e.g. ``brgconv_avx512_I8``) for the execution graph's layers
    of the given types: they say which precision and instruction set really ran."""
    found = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info['layerType'].astype(str) in layer_types:
            found.append(info['primitiveType'].astype(str))
    return sorted(set(found))


def best_seconds(run: Runner, repeats: int = 5) -> float:
    run()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_models(n: int) -> Dict[str, onnx.ModelProto]:
    """n x n x n matmuls: float (A input, B constant), integer (u8 x s8 -> s32) and QDQ."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((n, n)).astype(np.float32)
    opset = [helper.make_opsetid('', 17)]
    a_float = helper.make_tensor_value_info('a', TensorProto.FLOAT, [n, n])
    y_float = helper.make_tensor_value_info('y', TensorProto.FLOAT, [n, n])
    float_graph = helper.make_graph([helper.make_node('MatMul', ['a', 'b'], ['y'])], 'mm',
                                    [a_float], [y_float], [numpy_helper.from_array(weight, 'b')])
    int_graph = helper.make_graph(
        [helper.make_node('MatMulInteger', ['a', 'b', 'a_zero', 'b_zero'], ['y'])], 'mmi',
        [helper.make_tensor_value_info('a', TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info('y', TensorProto.INT32, [n, n])],
        [numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), 'b'),
         numpy_helper.from_array(np.array(128, np.uint8), 'a_zero'),
         numpy_helper.from_array(np.array(0, np.int8), 'b_zero')])
    qdq_graph = helper.make_graph(
        [helper.make_node('QuantizeLinear', ['a', 'a_scale', 'a_zero'], ['a_q']),
         helper.make_node('DequantizeLinear', ['a_q', 'a_scale', 'a_zero'], ['a_dq']),
         helper.make_node('DequantizeLinear', ['b_q', 'b_scale'], ['b_dq'], axis=1),
         helper.make_node('MatMul', ['a_dq', 'b_dq'], ['y'])], 'mmqdq', [a_float], [y_float],
        [numpy_helper.from_array(np.array(1 / 64, np.float32), 'a_scale'),
         numpy_helper.from_array(np.array(128, np.uint8), 'a_zero'),
         numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), 'b_q'),
         numpy_helper.from_array(np.full(n, 1 / 64, np.float32), 'b_scale')])
    return {name: helper.make_model(graph, opset_imports=opset)
            for name, graph in (('float', float_graph), ('integer', int_graph),
                                ('qdq', qdq_graph))}


def measure_peaks(n: int = PEAK_SIZE) -> Tuple[Dict[Tuple[str, str], float], Dict[str, List]]:
    """GOP/s (multiply + add = 2 ops) of n^3 matmuls per (engine, precision)."""
    models = matmul_models(n)
    rng = np.random.default_rng(1)
    a_float = {'a': rng.random((n, n), dtype=np.float32)}
    a_uint8 = {'a': rng.integers(0, 256, (n, n), dtype=np.uint8)}
    runners = {('onnxruntime', 'f32'): ort_runner(models['float'], a_float),
               ('onnxruntime', 'int8'): ort_runner(models['integer'], a_uint8)}
    kernels = {}
    for hint in OV_FLOAT_HINTS:
        compiled = ov_compile(models['float'], hint)
        runners[('openvino', hint)] = ov_runner(compiled, a_float)
        kernels[f'openvino {hint}'] = ov_kernels(compiled, ('MatMul', 'FullyConnected'))
    compiled = ov_compile(models['qdq'], 'f32')
    runners[('openvino', 'int8')] = ov_runner(compiled, a_float)
    kernels['openvino int8'] = ov_kernels(compiled, ('MatMul', 'FullyConnected'))
    ops = 2 * n ** 3
    return {key: ops / best_seconds(run) / 1e9 for key, run in runners.items()}, kernels


def model_runners(fp32: Path, int8: Path) -> Tuple[Dict[Tuple[str, str], Runner],
                                                   Dict[str, str], Dict[str, List]]:
    """Runners per (engine, precision), failures to compile, OpenVINO's conv precisions."""
    feed = {'input': np.random.default_rng(0).random(SHAPE, dtype=np.float32),
            'factor': np.array([SCALE, SCALE], np.float32)}
    float_model, int8_model = onnx.load(str(fp32)), onnx.load(str(int8))
    runners = {('onnxruntime', 'f32'): ort_runner(float_model, feed),
               ('onnxruntime', 'int8'): ort_runner(int8_model, feed)}
    failures, kernels = {}, {}
    for hint, model, file_precision in [(h, float_model, h) for h in OV_FLOAT_HINTS] + [
            ('f32', int8_model, 'int8')]:
        try:
            compiled = ov_compile(model, hint)
        except RuntimeError as err:
            failures[f'openvino {file_precision}'] = str(err).strip().splitlines()[-1][:160]
            continue
        runners[('openvino', file_precision)] = ov_runner(compiled, feed)
        kernels[f'openvino {file_precision}'] = ov_kernels(compiled, ('Convolution',))
    return runners, failures, kernels


def interleaved(runners: Dict[Tuple[str, str], Runner], rounds: int) -> Dict[Tuple, List]:
    """Seconds per configuration and round; every configuration runs once per round."""
    for run in runners.values():
        run(), run()
    times: Dict[Tuple, List] = {key: [] for key in runners}
    for _ in range(rounds):
        for key, run in runners.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    return times


def paired_ratio(seconds: List[float], base: List[float]) -> float:
    """Median over rounds of the time divided by the base configuration's in the same round."""
    return statistics.median(t / b for t, b in zip(seconds, base))


def rows_for(name: str, fp32: Path, times: Dict[Tuple, List], peaks: Dict[Tuple, float]
             ) -> List[Dict]:
    out_pixels = int(SHAPE[2] * SCALE) * int(SHAPE[3] * SCALE)
    flop = FLOP_PER_MAC * conv_macs_per_output_pixel(fp32) * out_pixels
    rows = []
    for (engine, precision), seconds in times.items():
        floor = flop / (peaks[(engine, precision)] * 1e9)
        median = statistics.median(seconds)
        rows.append({'model': name, 'engine': engine, 'precision': precision,
                     'median_ms': median * 1e3,
                     'vs_f32': paired_ratio(seconds, times[(engine, 'f32')]),
                     'vs_default': paired_ratio(seconds, times[('onnxruntime', 'f32')]),
                     'floor_ms': floor * 1e3, 'vs_floor': median / floor,
                     'gop_per_s': flop / median / 1e9})
    return rows


def main() -> int:
    args = parse_args()
    work_dir = Path(args.work_dir)
    features = read_cpu_features()
    print(f'CPU: {features.summary()}')
    print(f'load average at start: {Path("/proc/loadavg").read_text().split()[:3]}')
    calibration = None
    models = {}
    for path in map(Path, args.models):
        if not path.is_file():
            print(f'{path}: not found; export it with tools/deploy.py', file=sys.stderr)
            return 2
        name = f'{path.parent.name}'
        int8_path = work_dir / name / 'end2end_int8.onnx'
        if calibration is None:
            metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
            calibration = builtin_calibration_set(ModelConvention.from_metadata(metadata))
        quantize_int8(path, int8_path, calibration)
        models[name] = (path, int8_path)

    peaks_before, matmul_kernels = measure_peaks()
    results, rows = {}, []
    for name, (fp32, int8) in models.items():
        runners, failures, kernels = model_runners(fp32, int8)
        times = interleaved(runners, args.rounds)
        results[name] = {'failures': failures, 'conv_kernels': kernels,
                         'seconds': {f'{e} {p}': t for (e, p), t in times.items()}}
        rows.append((name, fp32, times))
    peaks_after, _ = measure_peaks()
    peaks = {key: max(peaks_before[key], peaks_after[key]) for key in peaks_before}
    table = [row for name, fp32, times in rows for row in rows_for(name, fp32, times, peaks)]

    print(f'\nmatmul peaks, {PEAK_SIZE}^3, GOP/s (best before / after the rounds):')
    for key in peaks:
        print(f'  {key[0]:<12}{key[1]:<6}{peaks_before[key]:>8.0f}{peaks_after[key]:>8.0f}'
              f'   {", ".join(matmul_kernels.get(f"{key[0]} {key[1]}", []))}')
    print(f'\n1x{SHAPE[1]}x{SHAPE[2]}x{SHAPE[3]} -> x{SCALE:g}, medians of {args.rounds} '
          'interleaved rounds')
    print(f'{"model":<22}{"engine":<13}{"prec":<6}{"ms":>8}{"vs f32":>8}{"vs ORT f32":>11}'
          f'{"floor ms":>10}{"vs floor":>10}{"GOP/s":>8}')
    for row in table:
        print(f'{row["model"]:<22}{row["engine"]:<13}{row["precision"]:<6}'
              f'{row["median_ms"]:>8.1f}{row["vs_f32"]:>8.2f}{row["vs_default"]:>11.2f}'
              f'{row["floor_ms"]:>10.1f}'
              f'{row["vs_floor"]:>10.2f}{row["gop_per_s"]:>8.0f}')
    for name, result in results.items():
        for key, kernels in result['conv_kernels'].items():
            print(f'{name} {key}: convolutions ran as {", ".join(kernels)}')
        for key, error in result['failures'].items():
            print(f'{name} {key}: does not compile: {error}')
    print(f'load average at end: {Path("/proc/loadavg").read_text().split()[:3]}')
    report = {'cpu': features.summary(), 'rows': table, 'models': results,
              'peaks_gops': {f'{e} {p}': v for (e, p), v in peaks.items()},
              'matmul_kernels': matmul_kernels}
    with atomic_write(work_dir / 'precision_speed.json', 'w') as file:
        json.dump(report, file, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
