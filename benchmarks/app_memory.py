"""Peak memory of ``srcnn-upscale`` on large outputs, with its default settings.

    python benchmarks/app_memory.py [--model work_dirs/srcnn_dynamic/end2end.onnx]

Each case writes a generated image (smooth noise, so PNG cannot compress it to nothing), runs
the command in a fresh process and reads that process's peak resident set size from
``os.wait4`` (``ru_maxrss``). The model is the shipped one, exported by
``python tools/deploy.py configs/srcnn_dynamic.py`` (run it first). Not part of the tests.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np

CASES = [  # (name, input height, width, scale, extra arguments)
    ('4000x3000 x2', 3000, 4000, '2', []),
    ('4000x3000 x4', 3000, 4000, '4', []),
    ('64x48 x100', 48, 64, '100', []),
]


def make_image(path: Path, height: int, width: int) -> None:
    """A photo-like RGB image: low-pass noise plus some texture."""
    rng = np.random.default_rng(0)
    small = rng.random((max(height // 16, 2), max(width // 16, 2), 3), dtype=np.float32)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    image += 0.05 * rng.standard_normal((height, width, 3), dtype=np.float32)
    cv2.imwrite(str(path), np.clip(image * 255, 0, 255).astype(np.uint8))


def run_case(model: Path, folder: Path, name: str, height: int, width: int, scale: str,
             extra: List[str]) -> Dict[str, object]:
    source = folder / f'in_{height}x{width}.png'
    if not source.exists():
        make_image(source, height, width)
    output = folder / f'out_{height}x{width}_x{scale}.png'
    output.unlink(missing_ok=True)
    command = [sys.executable, '-m', 'mmdeploy_srcnn.app', str(model), str(source), '-o',
               str(output), '--scale', scale, '--quiet', *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    error = process.stderr.read().decode().strip()
    return {'case': name, 'exit': os.waitstatus_to_exitcode(status),
            'peak_rss_mb': usage.ru_maxrss / 1024, 'seconds': seconds,
            'output_megapixels': height * width * float(scale) ** 2 / 1e6, 'stderr': error}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', type=Path,
                        default=Path('work_dirs/srcnn_dynamic/end2end.onnx'))
    parser.add_argument('--out', type=Path, default=Path('work_dirs/benchmarks/app_memory.json'))
    args = parser.parse_args()
    if not args.model.is_file():
        print(f'{args.model}: not found; run python tools/deploy.py configs/srcnn_dynamic.py '
              'first', file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix='app_memory_') as temp:
        for name, height, width, scale, extra in CASES:
            row = run_case(args.model, Path(temp), name, height, width, scale, extra)
            rows.append(row)
            print(f'{row["case"]:<16} exit {row["exit"]}  peak RSS {row["peak_rss_mb"]:7.0f} MB  '
                  f'{row["output_megapixels"]:6.1f} MP out  {row["seconds"]:6.1f} s'
                  + (f'  ({row["stderr"]})' if row['stderr'] else ''))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
