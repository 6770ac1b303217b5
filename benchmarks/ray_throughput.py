"""Images per second of ``srcnn-upscale`` on one machine: the local engine against Ray Data.

    python benchmarks/ray_throughput.py [--model work_dirs/srcnn_dynamic/end2end.onnx]

Generates 200 small photo-like images (128x128 RGB) once and upscales all of them at x2 with
each configuration, in one run:

- ``command``: the whole command in a fresh process, as a user runs it (interpreter start,
  model load, and for Ray, starting a local Ray instance and its workers);
- ``pool``: inside one process, the batch alone: the local loop over the images with one
  loaded model, or ``upscale_on_ray`` on a Ray started beforehand (so the time includes
  starting the workers and loading the model in each, not starting Ray).

Each time is the fastest of ``--repeat`` runs (the others are slowed by whatever else the
machine does). Ray's overhead is its time against the local engine at the same total thread
count; its scaling is 2 workers against 1. The model is the shipped one, exported by ``python
tools/deploy.py configs/srcnn_dynamic.py`` (run it first). Not part of the tests.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np

from mmdeploy_srcnn.app.batch import ImageSettings, Job, upscale_job
from mmdeploy_srcnn.app.ray_engine import Pool, ray_cluster, upscale_on_ray
from mmdeploy_srcnn.app.upscaler import Upscaler
from mmdeploy_srcnn.utils.precision import read_cpu_features

IMAGES, SIZE, SCALE = 200, 128, 2.0
ROOT = Path(__file__).resolve().parents[1]


def cpu_description() -> str:
    """The CPU, its relevant flags and the CPUs available to this process."""
    return f'{read_cpu_features().summary()}; {len(os.sched_getaffinity(0))} CPUs available'


def make_images(folder: Path) -> List[Path]:
    """Low-pass noise plus texture: photo-like, so PNG does not compress it to nothing."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    paths = []
    for index in range(IMAGES):
        small = rng.random((SIZE // 16, SIZE // 16, 3), dtype=np.float32)
        image = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        image += 0.05 * rng.standard_normal((SIZE, SIZE, 3), dtype=np.float32)
        paths.append(folder / f'img{index:03d}.png')
        cv2.imwrite(str(paths[-1]), np.clip(image * 255, 0, 255).astype(np.uint8))
    return paths


def time_command(model: Path, inputs: Path, out_dir: Path, extra: List[str]) -> float:
    shutil.rmtree(out_dir, ignore_errors=True)
    command = [sys.executable, '-m', 'mmdeploy_srcnn.app', str(model), str(inputs),
               '--out-dir', str(out_dir), '--scale', str(SCALE), '-q', *extra]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0 or len(list(out_dir.glob('*.png'))) != IMAGES:
        raise SystemExit(f'failed: {" ".join(command)}\n{result.stderr}')
    return seconds


def jobs_for(sources: List[Path], out_dir: Path) -> List[Job]:
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    return [Job(source, out_dir / source.name, None) for source in sources]


def time_local_pool(model: Path, sources: List[Path], out_dir: Path, threads: int) -> float:
    settings = ImageSettings((SCALE, SCALE), 200_000_000, None, False, 'onnxruntime')
    started = time.perf_counter()
    upscaler = Upscaler(model, threads=threads)
    for job in jobs_for(sources, out_dir):
        if upscale_job(upscaler, job, settings).status != 'done':
            raise SystemExit(f'failed: {job.source}')
    return time.perf_counter() - started


def time_ray_pool(model: Path, sources: List[Path], out_dir: Path, workers: int) -> float:
    settings = ImageSettings((SCALE, SCALE), 200_000_000, None, False, 'onnxruntime')
    jobs = jobs_for(sources, out_dir)
    started = time.perf_counter()
    rows = upscale_on_ray(jobs, model, {'threads': 1}, settings, Pool(workers, 1))
    outcomes = [outcome for _, outcome in rows]
    seconds = time.perf_counter() - started
    if [outcome.status for outcome in outcomes] != ['done'] * IMAGES:
        raise SystemExit('failed: a Ray row did not finish')
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', type=Path,
                        default=ROOT / 'work_dirs' / 'srcnn_dynamic' / 'end2end.onnx')
    parser.add_argument('--repeat', type=int, default=2, help='runs per configuration; the '
                        'fastest counts (default: 2)')
    parser.add_argument('--json', type=Path, help='also write the results here')
    args = parser.parse_args()
    model = args.model.absolute()
    if not model.is_file():
        raise SystemExit(f'{model}: not found; run python tools/deploy.py '
                         'configs/srcnn_dynamic.py first')
    print(f'CPU: {cpu_description()}')
    print(f'{IMAGES} images {SIZE}x{SIZE} RGB at x{SCALE:g}; precision chosen by auto: '
          f'{Upscaler(model).precision}')
    rows: List[Dict[str, object]] = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        sources = make_images(folder / 'in')
        out_dir = folder / 'out'
        for label, extra in [('local, 1 thread', ['--threads', '1']),
                             ('local, 2 threads', ['--threads', '2']),
                             ('ray, 1 worker x 1 thread', ['--engine', 'ray', '--workers', '1']),
                             ('ray, 2 workers x 1 thread', ['--engine', 'ray', '--workers', '2'])]:
            rows.append({'what': 'command', 'config': label, 'seconds': min(
                time_command(model, folder / 'in', out_dir, extra) for _ in range(args.repeat))})
        for threads in (1, 2):
            rows.append({'what': 'pool', 'config': f'local, {threads} thread' + 's' * (threads > 1),
                         'seconds': min(time_local_pool(model, sources, out_dir, threads)
                                        for _ in range(args.repeat))})
        started = time.perf_counter()
        with ray_cluster(None, len(os.sched_getaffinity(0))):
            ray_start = time.perf_counter() - started
            for workers in (1, 2):
                rows.append({'what': 'pool',
                             'config': f'ray, {workers} worker{"s" * (workers > 1)} x 1 thread',
                             'seconds': min(time_ray_pool(model, sources, out_dir, workers)
                                            for _ in range(args.repeat))})
    print(f'starting a local Ray (ray.init): {ray_start:.1f} s')
    print(f'{"measured":<9} {"configuration":<28} {"seconds":>8} {"images/s":>9}')
    for row in rows:
        row['images_per_s'] = IMAGES / row['seconds']
        print(f'{row["what"]:<9} {row["config"]:<28} {row["seconds"]:>8.2f} '
              f'{row["images_per_s"]:>9.1f}')
    by = {(row['what'], row['config']): row['seconds'] for row in rows}
    for what in ('command', 'pool'):
        local1, local2 = by[(what, 'local, 1 thread')], by[(what, 'local, 2 threads')]
        ray1 = by[(what, 'ray, 1 worker x 1 thread')]
        ray2 = by[(what, 'ray, 2 workers x 1 thread')]
        print(f'{what}: ray 1 worker / local 1 thread = {ray1 / local1:.2f}x the time; '
              f'ray 2 workers / local 2 threads = {ray2 / local2:.2f}x; scaling ray 1 -> 2 '
              f'workers = {ray1 / ray2:.2f}x; local 1 -> 2 threads = {local1 / local2:.2f}x')
    if args.json:
        args.json.write_text(json.dumps({'cpu': cpu_description(), 'ray_start_s': ray_start,
                                         'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
