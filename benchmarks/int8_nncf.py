"""The int8 tool choice: onnxruntime.quantization (shipped) against NNCF's ONNX PTQ.

    pip install nncf   # not a project dependency; only this comparison uses it
    python benchmarks/int8_nncf.py [--model work_dirs/srcnn_dynamic/end2end.onnx] [--rounds 7]

Both tools get the same calibration samples (the built-in training split, as
:func:`mmdeploy_srcnn.quantization.builtin_calibration_set` makes them) and the same scope: the
convolutions only, every other node in NNCF's ignored scope. NNCF runs twice: with its defaults
for a CPU target, and tuned (min/max activation ranges instead of its default mean of per-sample
ranges, no "overflow fix", which halves the first layer's weight range for CPUs without VNNI).
Prints, per model, the time to quantize, the Y-PSNR loss against float on OpenVINO per scale
(test split, evaluation protocol) and OpenVINO's latency at 1x3x256x256 -> x3 (median of
interleaved rounds after warm-up). Not part of the test suite.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import onnx
import openvino as ov

from mmdeploy_srcnn.app.upscaler import Upscaler
from mmdeploy_srcnn.datasets import load_split
from mmdeploy_srcnn.datasets.protocol import average_by_scale, evaluate
from mmdeploy_srcnn.quantization import CalibrationSet, builtin_calibration_set, quantize_int8
from mmdeploy_srcnn.utils.fileio import atomic_path
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import QUALITY_SCALES, read_cpu_features


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='work_dirs/srcnn_dynamic/end2end.onnx')
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--work-dir', default='work_dirs/benchmarks/int8/nncf')
    return parser.parse_args()


def nncf_quantize(fp32: Path, out: Path, calibration: CalibrationSet, tuned: bool) -> Path:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    model = onnx.load(str(fp32))
    float_nodes = [node.name for node in model.graph.node if node.op_type != 'Conv']
    advanced = (AdvancedQuantizationParameters(
        overflow_fix=OverflowFix.DISABLE,
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
        if tuned else None)
    quantized = nncf.quantize(model, nncf.Dataset(list(calibration.inputs)),
                              subset_size=len(calibration.inputs),
                              target_device=nncf.TargetDevice.CPU,
                              ignored_scope=nncf.IgnoredScope(names=float_nodes),
                              advanced_parameters=advanced)
    onnx.checker.check_model(quantized, full_check=True)
    with atomic_path(out) as tmp:
        onnx.save(quantized, str(tmp))
    return out


def y_psnr(path: Path, images: Dict) -> Dict[float, float]:
    upscaler = Upscaler(path, backend='openvino')
    return {r['scale']: r['psnr']
            for r in average_by_scale(evaluate(upscaler.upscale, images, QUALITY_SCALES))}


def ov_runner(path: Path) -> Callable[[], object]:
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), 'CPU',
                                  {'PERFORMANCE_HINT': 'LATENCY',
                                   'INFERENCE_PRECISION_HINT': 'f32'})
    request = compiled.create_infer_request()
    feed = {'input': np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32),
            'factor': np.array([3.0, 3.0], np.float32)}
    return lambda: request.infer(feed)


def main() -> int:
    args = parse_args()
    try:
        import nncf
    except ImportError:
        print('this comparison needs NNCF: pip install nncf', file=sys.stderr)
        return 2
    fp32, work_dir = Path(args.model), Path(args.work_dir)
    print(f'CPU: {read_cpu_features().summary()}; NNCF {nncf.__version__}')
    metadata = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    calibration = builtin_calibration_set(ModelConvention.from_metadata(metadata))
    makers = {
        'onnxruntime.quantization':
            lambda out: quantize_int8(fp32, out, calibration),
        'NNCF defaults': lambda out: nncf_quantize(fp32, out, calibration, tuned=False),
        'NNCF tuned': lambda out: nncf_quantize(fp32, out, calibration, tuned=True),
    }
    paths, seconds = {}, {}
    for index, (label, make) in enumerate(makers.items()):
        start = time.perf_counter()
        paths[label] = make(work_dir / f'int8_{index}.onnx')
        seconds[label] = time.perf_counter() - start

    images = load_split('test')
    reference = y_psnr(fp32, images)
    runners = {'float': ov_runner(fp32), **{label: ov_runner(p) for label, p in paths.items()}}
    for run in runners.values():
        run(), run()
    times = {label: [] for label in runners}
    for _ in range(args.rounds):
        for label, run in runners.items():
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)

    print(f'\n{"":<38}' + ''.join(f'{"x" + format(s, "g"):>7}' for s in QUALITY_SCALES)
          + f'{"max":>7}{"quantize s":>12}{"OV ms":>8}')
    print(f'{"float (Y-PSNR dB)":<38}' + ''.join(f'{reference[s]:>7.2f}' for s in QUALITY_SCALES)
          + f'{"":>19}{statistics.median(times["float"]) * 1e3:>8.1f}')
    for label, path in paths.items():
        quality = y_psnr(path, images)
        loss = [reference[s] - quality[s] for s in QUALITY_SCALES]
        print(f'{label + " (loss dB)":<38}' + ''.join(f'{v:>7.3f}' for v in loss)
              + f'{max(loss):>7.3f}{seconds[label]:>12.1f}'
              f'{statistics.median(times[label]) * 1e3:>8.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
