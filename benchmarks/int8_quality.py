"""Y-PSNR lost by int8 against the float model, per scale, on the built-in test split.

    python benchmarks/int8_quality.py [--models work_dirs/srcnn_dynamic/end2end.onnx ...]
        [--ablation] [--work-dir work_dirs/benchmarks/int8]

For each float model (default: the matmul-resize and the plain-Resize exports of
``tools/deploy.py``) the script writes ``end2end_int8.onnx`` with the default settings of
:func:`mmdeploy_srcnn.quantization.quantize_int8`, calibrated on the *training* split, and
scores float and int8 with the evaluation protocol (``mmdeploy_srcnn.datasets.protocol``: LR by
MATLAB bicubic, Y-PSNR with ceil(scale) border pixels shaved) through the app on ONNX Runtime
and OpenVINO, at x1.5, 2, 2.5, 3, 3.5 and 4. ``loss`` is float minus int8 Y-PSNR (dB, positive
= int8 worse), averaged over the test images. It prints the table, the int8 rows as a quality
table for ``--precision auto`` (``mmdeploy_srcnn.utils.precision``), and with ``--ablation``
the loss of other settings on OpenVINO (first model only): calibration method, per-tensor
weights, symmetric activations, int8 convolution outputs, one convolution at a time in int8,
more calibration data. Writes everything to ``<work-dir>/int8_quality.json``. Deterministic
(seeded calibration crops); not part of the test suite.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import onnx

from mmdeploy_srcnn.app.upscaler import Upscaler
from mmdeploy_srcnn.datasets import load_split
from mmdeploy_srcnn.datasets.protocol import average_by_scale, evaluate
from mmdeploy_srcnn.quantization import builtin_calibration_set, conv_names, quantize_int8
from mmdeploy_srcnn.utils.fileio import atomic_write
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import QUALITY_SCALES, QualityTable, read_cpu_features

DEFAULT_MODELS = ('work_dirs/srcnn_dynamic/end2end.onnx',
                  'work_dirs/srcnn_dynamic_resize/end2end.onnx')
ENGINES = ('onnxruntime', 'openvino')
ABLATION_ENGINE = 'openvino'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        help='float .onnx files exported by tools/deploy.py')
    parser.add_argument('--ablation', action='store_true',
                        help='also measure other quantization settings (OpenVINO)')
    parser.add_argument('--work-dir', default='work_dirs/benchmarks/int8')
    return parser.parse_args()


def y_psnr(path: Path, engine: str, images: Dict) -> Dict[float, float]:
    """Mean Y-PSNR per scale of the model at ``path`` run through the app on ``engine``."""
    upscaler = Upscaler(path, backend=engine)
    records = average_by_scale(evaluate(upscaler.upscale, images, QUALITY_SCALES))
    return {record['scale']: record['psnr'] for record in records}


def losses(reference: Dict[float, float], other: Dict[float, float]) -> Dict[float, float]:
    return {scale: reference[scale] - other[scale] for scale in reference}


def format_row(label: str, values: Dict[float, float], fmt: str = '{:>8.3f}') -> str:
    cells = ''.join(fmt.format(values[scale]) for scale in QUALITY_SCALES)
    return f'{label:<44}{cells}{max(values.values()):>8.3f}'


def model_convention(path: Path) -> ModelConvention:
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return ModelConvention.from_metadata(metadata)


def ablation_settings(fp32: Path) -> List[Tuple[str, Dict[str, Any]]]:
    convs = conv_names(onnx.load(str(fp32)))
    only = [(f'only {name} int8', {'float_convs': [c for c in convs if c != name]})
            for name in convs]
    return [('minmax (default)', {}), ('entropy', {'method': 'entropy'}),
            ('percentile 99.99', {'method': 'percentile'}),
            ('per-tensor weights', {'per_channel': False}),
            ('symmetric int8 activations', {'symmetric_activations': True}),
            ('int8 conv outputs too', {'quantize_conv_outputs': True}),
            (f'{convs[-1]} float', {'float_convs': [convs[-1]]}), *only,
            ('minmax, 6 x 128 px patches per image', {'calibration': 'more'}),
            ('percentile, 6 x 128 px patches per image',
             {'method': 'percentile', 'calibration': 'more'})]


def main() -> int:
    args = parse_args()
    work_dir = Path(args.work_dir)
    print(f'CPU: {read_cpu_features().summary()}')
    test_images = load_split('test')
    header = f'{"":<44}' + ''.join(f'{"x" + format(s, "g"):>8}' for s in QUALITY_SCALES)
    report: Dict[str, Any] = {'scales': list(QUALITY_SCALES), 'models': {}}
    table_rows: Dict[str, Dict[str, Dict[float, float]]] = {}
    calibration = None
    for path in map(Path, args.models):
        if not path.is_file():
            print(f'{path}: not found; export it with tools/deploy.py', file=sys.stderr)
            return 2
        if calibration is None:
            calibration = builtin_calibration_set(model_convention(path))
        name = path.parent.name
        int8_path = quantize_int8(path, work_dir / name / 'end2end_int8.onnx', calibration)
        print(f'\n{name}: Y-PSNR (dB) on the test split, and loss = float - int8 (dB)')
        print(header + f'{"max":>8}')
        result = {}
        for engine in ENGINES:
            fp32, int8 = y_psnr(path, engine, test_images), y_psnr(int8_path, engine, test_images)
            loss = losses(fp32, int8)
            print(format_row(f'{engine} f32 Y-PSNR', fp32, '{:>8.2f}')[:-8])
            print(format_row(f'{engine} int8 loss', loss))
            result[engine] = {'f32_psnr': fp32, 'int8_psnr': int8, 'int8_loss_db': loss}
            if name == Path(args.models[0]).parent.name:
                table_rows[engine] = {'int8': loss}
        report['models'][name] = result

    quality_table = QualityTable(table_rows)
    print(f'\nquality table of {Path(args.models[0]).parent.name} for --precision auto:')
    print(quality_table.to_json())
    report['quality_table'] = quality_table.to_dict()

    if args.ablation:
        fp32 = Path(args.models[0])
        more = builtin_calibration_set(model_convention(fp32), patch=128,
                                       patches_per_image=6)
        reference = y_psnr(fp32, ABLATION_ENGINE, test_images)
        print(f'\nablation on {ABLATION_ENGINE}, {fp32.parent.name}: loss (dB) per scale')
        print(header + f'{"max":>8}')
        report['ablation'] = {}
        for label, settings in ablation_settings(fp32):
            settings = dict(settings)
            data = more if settings.pop('calibration', None) == 'more' else calibration
            start = time.perf_counter()
            path = quantize_int8(fp32, work_dir / 'ablation.onnx', data, **settings)
            seconds = time.perf_counter() - start
            loss = losses(reference, y_psnr(path, ABLATION_ENGINE, test_images))
            print(format_row(label, loss) + f'   ({seconds:.0f} s to quantize)')
            report['ablation'][label] = {'loss_db': loss, 'quantize_s': seconds,
                                         'samples': len(data.inputs)}
    with atomic_write(work_dir / 'int8_quality.json', 'w') as file:
        json.dump(report, file, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
