"""Speed and quality of the deployed SRCNN per engine and inference precision.

    PYTHONPATH=. python benchmarks/precision_engines.py [--work-dir work_dirs/precision]

Prints the CPU model and its bf16/fp16/VNNI/AMX flags, then, for the shipped model
(configs/srcnn_dynamic.py and its checkpoint) exported as deployed (TorchScript, matmul resize)
at opset 18, where Resize takes the [scale_h, scale_w] factor unchanged:

(a) per engine and precision (OpenVINO also with no precision hint, its default): median
    milliseconds at 1x3x256x256 -> x3 (a crop of the test image 'astronaut'), the ratio to
    the floor of that precision (the model's FLOPs over a torch matmul peak of the same dtype,
    2048^3, measured in this run on the same threads), max |diff| against PyTorch float32,
    and the output size of a 200x289 input at x3 (must be 600x867); the plain-Resize export
    is timed beside it;
(b) Y-PSNR on the built-in test split (datasets.protocol) at x1.5, 2, 3 and 4 per precision,
    and its change against float32 on the same engine.

Engines use their own thread defaults; torch uses the same number of threads for the peaks.
The load average is printed before and after: compare ratios within one run, on an idle
machine. Not part of the test suite.
"""
import argparse
import os
import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import onnxruntime as ort
import openvino as ov
import torch

from mmdeploy_srcnn.apis import torch2onnx
from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.datasets.builtin import load_split
from mmdeploy_srcnn.datasets.protocol import average_by_scale, evaluate
from mmdeploy_srcnn.models import build_model

CONFIG = 'configs/srcnn_dynamic.py'
CPU_FLAGS = ('avx512_bf16', 'amx_bf16', 'avx512_fp16', 'avx512_vnni', 'amx_int8')
SHAPE, SCALE = (1, 3, 256, 256), (3.0, 3.0)
SIZE_CHECK = (200, 289)  # x3 -> 600 x 867; 289 and 867 are not bfloat16 numbers
PSNR_SCALES = (1.5, 2.0, 3.0, 4.0)
CONV_FLOP_PER_PIXEL = 2 * (9 * 9 * 3 * 64 + 64 * 32 + 5 * 5 * 32 * 3)  # SRCNN 9-1-5, 3-64-32-3
TORCH_DTYPES = {'f32': torch.float32, 'bf16': torch.bfloat16, 'f16': torch.float16}
Run = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cpu_description() -> Tuple[str, Dict[str, bool]]:
    """CPU model name and which of :data:`CPU_FLAGS` it reports (Linux /proc/cpuinfo)."""
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return platform.processor() or 'unknown', {flag: False for flag in CPU_FLAGS}
    model = next((line.split(':', 1)[1].strip() for line in text.splitlines()
                  if line.startswith('model name')), 'unknown')
    flags = next((line.split(':', 1)[1].split() for line in text.splitlines()
                  if line.startswith('flags')), [])
    return model, {flag: flag in flags for flag in CPU_FLAGS}


def median_ms(run: Callable[[], object], runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of a ``size``-cubed torch matmul in ``dtype`` on torch's threads."""
    a, b = (torch.rand(size, size).to(dtype) for _ in range(2))
    a @ b
    best = min(median_ms(lambda: a @ b, runs=1, warmup=0) for _ in range(repeats))
    return 2 * size ** 3 / (best / 1e3) / 1e9


def onnxruntime_run(path: Path) -> Run:
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return lambda image, factor: session.run(None, {'input': image, 'factor': factor})[0]


def openvino_run(path: Path, precision: str) -> Tuple[Run, str]:
    """OpenVINO, latency hint; ``precision`` 'default' sets no precision hint."""
    properties = {'PERFORMANCE_HINT': 'LATENCY'}
    if precision != 'default':
        properties['INFERENCE_PRECISION_HINT'] = precision
    compiled = ov.Core().compile_model(str(path), 'CPU', properties)
    request = compiled.create_infer_request()

    def run(image: np.ndarray, factor: np.ndarray) -> np.ndarray:
        return np.array(request.infer({'input': image, 'factor': factor})[0])

    return run, compiled.get_property('INFERENCE_PRECISION_HINT').get_type_name()


def upscaler(run: Run) -> Callable[[np.ndarray, float], np.ndarray]:
    """The protocol's ``upscale(lr_uint8, scale)`` on top of an engine run."""
    def upscale(lr: np.ndarray, scale: float) -> np.ndarray:
        image = (lr.astype(np.float32) / 255).transpose(2, 0, 1)[None]
        output = run(np.ascontiguousarray(image), np.array([scale, scale], np.float32))
        return (np.clip(output[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    return upscale


def print_table(title: str, rows: List[Dict[str, object]], columns: Sequence[str]) -> None:
    print(f'\n{title}')
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print('  '.join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print('  '.join(str(row[c]).ljust(w) for c, w in zip(columns, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/precision', type=Path)
    parser.add_argument('--runs', default=20, type=int, help='timed runs per engine')
    args = parser.parse_args()

    model_name, flags = cpu_description()
    threads = torch.get_num_threads()
    print(f'CPU: {model_name}; {os.cpu_count()} logical CPUs; torch threads {threads}')
    print('flags: ' + ', '.join(f'{flag}={"yes" if present else "no"}'
                                for flag, present in flags.items()))
    print(f'onnxruntime {ort.__version__}, openvino {ov.__version__}, torch {torch.__version__}')
    print('load average (1, 5, 15 min): %.2f %.2f %.2f' % os.getloadavg())
    print('OpenVINO CPU capabilities: '
          + ', '.join(ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')))

    paths, model = {}, None
    for variant, matmul in (('matmul', True), ('plain', False)):
        cfg = load_deploy_config(CONFIG, {'onnx_config.matmul_resize': matmul,
                                          'onnx_config.opset_version': 18})
        model = build_model(cfg.model, cfg.checkpoint).eval()
        paths[variant] = torch2onnx(model, cfg, args.work_dir / variant)

    peaks = {name: matmul_peak_gflops(dtype) for name, dtype in TORCH_DTYPES.items()}
    print('torch matmul peak, GFLOP/s: ' + ', '.join(f'{k} {v:.0f}' for k, v in peaks.items()))

    split = load_split('test')
    crop = split['astronaut'][128:128 + SHAPE[2], 128:128 + SHAPE[3]]
    image = np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32) / 255
    rng = np.random.default_rng(0)
    factor = np.array(SCALE, np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(image), SCALE).numpy()
    size_image = rng.random((1, 3, *SIZE_CHECK), dtype=np.float32)
    out_pixels = reference.shape[2] * reference.shape[3]

    engines: List[Tuple[str, str, Callable[[Path], Tuple[Run, str]]]] = [
        ('onnxruntime', 'f32', lambda p: (onnxruntime_run(p), 'f32'))]
    engines += [('openvino', precision, lambda p, precision=precision: openvino_run(p, precision))
                for precision in ('f32', 'default', 'bf16', 'f16')]
    rows, runs = [], {}
    for engine, precision, make in engines:
        for variant, path in paths.items():
            run, used = make(path)
            if variant == 'matmul':
                runs[(engine, precision)] = run
            ms = median_ms(lambda: run(image, factor), args.runs)
            output = run(image, factor)
            floor_ms = CONV_FLOP_PER_PIXEL * out_pixels / (peaks[used] * 1e9) * 1e3
            rows.append({'engine': engine, 'precision': precision, 'runs in': used,
                         'graph': variant, 'ms': f'{ms:.1f}',
                         'x floor': f'{ms / floor_ms:.2f}',
                         'max|diff|': f'{np.abs(output - reference).max():.2e}',
                         '200x289 x3': 'x'.join(map(str, run(size_image, factor).shape[2:]))})
    print_table(f'(a) 1x3x{SHAPE[2]}x{SHAPE[3]} -> x3, median of {args.runs} (floor: '
                f'{CONV_FLOP_PER_PIXEL} FLOP per output pixel over the peak of the precision '
                'run)', rows, list(rows[0]))

    scores = {key: average_by_scale(evaluate(upscaler(run), split, PSNR_SCALES))
              for key, run in runs.items()}
    rows = []
    for (engine, precision), by_scale in scores.items():
        baseline = scores[(engine, 'f32')] if (engine, 'f32') in scores else by_scale
        row = {'engine': engine, 'precision': precision}
        for score, base in zip(by_scale, baseline):
            row[f'x{score["scale"]:g} dB'] = f'{score["psnr"]:.3f}'
            row[f'x{score["scale"]:g} vs f32'] = f'{score["psnr"] - base["psnr"]:+.3f}'
        rows.append(row)
    print_table(f'(b) Y-PSNR on the built-in test split ({len(split)} images), matmul graph',
                rows, list(rows[0]))
    print('\nload average (1, 5, 15 min): %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()
