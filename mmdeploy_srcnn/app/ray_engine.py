"""Batch upscaling on Ray Data: the local loop's per-image work, on a pool of actors.

Each actor of the pool loads one :class:`~.upscaler.Upscaler` (one engine session with
``threads`` threads, reserving as many Ray CPUs) and runs :func:`.batch.upscale_job` on the
rows it is given, the very function the local loop runs. A row holds file paths, not pixels:
every worker reads its inputs and writes its outputs itself (atomically, never replacing a
file without ``overwrite``), so the object store carries a few hundred bytes per image and
the folders must be the same on every node (a shared file system on a cluster).

Ray is started in this process by default (``address='local'``: never an already running
instance, bound to 127.0.0.1, no dashboard) and stopped at the end; with an address the run
joins that cluster instead and leaves it running. Ray's own log lines go to its session logs
(under ``/tmp/ray``), not to the terminal: the command's errors stay one line each.

A bad image is a failed row, never an exception. A worker process that dies (killed, out of
memory) is not restarted and its images are not retried (``max_restarts=0``): the run stops
with an error, and a rerun resumes, skipping the finished outputs. Resuming is the one retry
mechanism, so an image is never processed twice by one run and a restarted worker cannot
trip over an output its predecessor published.
"""
import contextlib
import dataclasses
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from mmdeploy_srcnn.backends import BackendError
from mmdeploy_srcnn.utils.fileio import printable

from .batch import FAILED, ImageSettings, Job, Outcome, upscale_job
from .upscaler import Upscaler

LOCAL_ADDRESS = '127.0.0.1'
IMAGES_PER_BLOCK = 10
BLOCKS_PER_WORKER = 4
STOP_TIMEOUT_SECONDS = 10.0
"""How long stopping a local Ray may take until its worker processes are gone."""
_LOG_LEVEL = logging.ERROR


class RayEngineError(RuntimeError):
    """Ray is missing, cannot start or connect, or the pool failed; one printable line."""


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayEngineError("--engine ray needs Ray Data: pip install 'mmdeploy_srcnn[ray]'") \
            from None
    return ray


def _quiet_ray_data(ray: Any) -> None:
    """No progress bars or execution plans from Ray Data on the terminal (ours are shown)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for handler in logging.getLogger('ray.data').handlers:
        if isinstance(handler, logging.StreamHandler) \
                and not isinstance(handler, logging.FileHandler):
            handler.setLevel(_LOG_LEVEL)  # the session log files keep everything


@dataclasses.dataclass(frozen=True)
class ClusterCpus:
    """CPUs of the Ray cluster: in all, and on its largest node (an actor runs on one node)."""

    total: int
    largest_node: int


def _cluster_cpus(ray: Any) -> ClusterCpus:
    per_node = [int(node['Resources'].get('CPU', 0)) for node in ray.nodes() if node['Alive']]
    if not per_node or max(per_node) < 1:
        raise RayEngineError('the Ray cluster has no CPUs to run workers on')
    return ClusterCpus(sum(per_node), max(per_node))


@contextlib.contextmanager
def ray_cluster(address: Optional[str], num_cpus: int) -> Iterator[ClusterCpus]:
    """Connect to Ray for the block; yields the cluster's CPUs.

    ``address`` None: start a local instance with ``num_cpus`` CPUs in this process and
    stop it afterwards. Otherwise join the cluster at ``address`` and leave it running. A
    process already connected to Ray keeps its connection (and the owner stops it).
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        options: Dict[str, Any] = dict(logging_level=_LOG_LEVEL, log_to_driver=False)
        if address is None:
            options.update(address='local', num_cpus=num_cpus, include_dashboard=False,
                           _node_ip_address=LOCAL_ADDRESS)
        else:
            options.update(address=address)
        try:
            ray.init(**options)
        except Exception as err:  # ConnectionError, RuntimeError, ValueError ...
            if address is None:
                raise RayEngineError(f'cannot start a local Ray ({_first_line(err)})') from None
            reason = _first_line(err).split('. ')[0].rstrip('.')  # Ray's advice names its CLI
            raise RayEngineError(f'cannot connect to Ray at {printable(address)} ({reason}); '
                                 'start one with `ray start --head`, or leave out '
                                 '--ray-address for a Ray of this process') from None
        started = True
    try:
        _quiet_ray_data(ray)
        yield _cluster_cpus(ray)
    finally:
        if started:
            processes = _descendants()  # the local Ray: its servers and our workers
            ray.shutdown()
            _wait_until_gone(processes, STOP_TIMEOUT_SECONDS)


def _process_table() -> Dict[int, Tuple[int, int]]:
    """``{pid: (parent pid, start time)}`` of every process, from ``/proc`` (empty where
    there is none)."""
    table = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir('/proc'):
            if not entry.name.isdigit():
                continue
            try:
                with open(f'/proc/{entry.name}/stat', 'rb') as file:
                    stat = file.read()
            except OSError:  # it has just exited
                continue
            # after "pid (command)": state, ppid, ... starttime is field 22 of the line
            fields = stat[stat.rindex(b')') + 2:].split()
            if fields[0] != b'Z':  # a zombie runs no more code
                table[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return table


def _descendants() -> Set[Tuple[int, int]]:
    """``(pid, start time)`` of every process this one started, directly or not."""
    table = _process_table()
    found: Set[Tuple[int, int]] = set()
    parents = [os.getpid()]
    while parents:
        parent = parents.pop()
        for pid, (ppid, start) in table.items():
            if ppid == parent and (pid, start) not in found:
                found.add((pid, start))
                parents.append(pid)
    return found


def _wait_until_gone(processes: Set[Tuple[int, int]], timeout: float) -> None:
    """Wait until none of ``processes`` runs any more (a pid reused by a newer process does
    not count), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while processes and time.monotonic() < deadline:
        table = _process_table()
        processes = {(pid, start) for pid, start in processes
                     if table.get(pid, (0, None))[1] == start}
        if processes:
            time.sleep(0.05)


def remove_leftovers(jobs: Sequence[Job]) -> None:
    """Remove the temporary files that workers killed mid-write left next to the outputs of
    ``jobs`` (complete outputs are never touched).

    Only safe once those workers are gone, as after :func:`ray_cluster` stopped a local Ray.
    The names are those :mod:`mmdeploy_srcnn.utils.fileio` gives its temporary files:
    ``.`` + the first 32 characters of the output's name + ``.`` + random + ``.tmp`` ...
    """
    for job in jobs:
        for target in job.targets:
            prefix = f'.{target.name[:32]}.'
            with contextlib.suppress(OSError):
                for entry in os.scandir(target.parent):
                    if entry.name.startswith(prefix) and '.tmp' in entry.name[len(prefix):] \
                            and entry.is_file(follow_symlinks=False):
                        Path(entry.path).unlink(missing_ok=True)


def _first_line(err: BaseException) -> str:
    """Ray's message up to its first line break (what follows is advice about Ray's own CLI or
    a remote traceback; :func:`~mmdeploy_srcnn.backends.base.first_line` keeps three lines,
    which suits engine errors), escaped."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return printable(lines[0] if lines else type(err).__name__)


class UpscaleWorker:
    """One actor of the pool: a loaded model, and :func:`.batch.upscale_job` for each row.

    A model that cannot be loaded on this worker's node (say, its engine is not installed
    there) fails every row given to this worker, with the reason, rather than the run.
    """

    def __init__(self, model: str, upscaler_options: Dict[str, Any],
                 settings: ImageSettings) -> None:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # errors are ours
        self._settings = settings
        self._upscaler: Optional[Upscaler] = None
        self._load_error = ''
        try:
            self._upscaler = Upscaler(model, **upscaler_options)
        except (BackendError, ValueError) as err:
            self._load_error = f'{printable(model)}: {err}'

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        outcomes = [self._one(*paths) for paths in
                    zip(batch['source'], batch['output'], batch['compare'])]
        return {'index': batch['index'],
                'status': np.array([outcome.status for outcome in outcomes], dtype=object),
                'message': np.array([outcome.message for outcome in outcomes], dtype=object)}

    def _one(self, source: bytes, output: bytes, compare: bytes) -> Outcome:
        job = Job(_path(source), _path(output), _path(compare) if compare else None)
        if self._upscaler is None:
            return Outcome(FAILED, f'{printable(job.source)}: not processed: the worker on '
                                   f'{os.uname().nodename} cannot load the model '
                                   f'({self._load_error})')
        return upscale_job(self._upscaler, job, self._settings)


def _path(raw: bytes) -> Path:
    return Path(os.fsdecode(raw))


@dataclasses.dataclass(frozen=True)
class Pool:
    """How many actors, and engine threads (= Ray CPUs) for each."""

    workers: int
    threads: int


def block_count(jobs: int, pool: Pool) -> int:
    """How many blocks (Ray Data tasks) the jobs are cut into.

    Each block costs a task's scheduling and result handling; on a 2-core machine one image
    per block made a 128x128 image cost about 20 ms more. Up to :data:`IMAGES_PER_BLOCK`
    images go into a block, and there are at least :data:`BLOCKS_PER_WORKER` blocks per
    worker, so that a few images still spread over every worker and the last blocks finish
    together.
    """
    return max(1, min(jobs, max(BLOCKS_PER_WORKER * pool.workers,
                                -(-jobs // IMAGES_PER_BLOCK))))


def _rows(jobs: Sequence[Job]) -> List[Dict[str, Any]]:
    """One row per job: its position and its paths, as bytes (any file name survives Arrow,
    whose strings must be UTF-8)."""
    return [{'index': index, 'source': os.fsencode(job.source),
             'output': os.fsencode(job.output),
             'compare': b'' if job.compare is None else os.fsencode(job.compare)}
            for index, job in enumerate(jobs)]


def upscale_on_ray(jobs: Sequence[Job], model: Path, upscaler_options: Dict[str, Any],
                   settings: ImageSettings, pool: Pool) -> Iterator[Tuple[int, Outcome]]:
    """Run every job on an actor pool of the connected Ray; yields ``(job index, outcome)`` as
    the rows come back, in no particular order.

    Paths must be absolute: workers do not share this process's working directory. Call it
    inside :func:`ray_cluster`.

    Raises:
        RayEngineError: the pool failed as a whole (a worker died, Ray stopped).
    """
    ray = _import_ray()
    if not model.is_absolute() or any(not path.is_absolute() for job in jobs
                                      for path in job.targets + (job.source,)):
        raise ValueError('upscale_on_ray needs absolute paths')
    dataset = ray.data.from_items(_rows(jobs), override_num_blocks=block_count(len(jobs), pool))
    with warnings.catch_warnings():
        # max_restarts goes through map_batches' extra keyword arguments, which Ray 2.60
        # marks as deprecated while offering no named parameter for it.
        warnings.filterwarnings('ignore', message='`ray_remote_args` is deprecated',
                                category=DeprecationWarning)
        results = dataset.map_batches(
            UpscaleWorker, fn_constructor_args=(str(model), upscaler_options, settings),
            batch_size=1, batch_format='numpy', num_cpus=pool.threads,
            compute=ray.data.ActorPoolStrategy(size=pool.workers), max_restarts=0)
    try:
        for row in results.iter_rows():
            yield int(row['index']), Outcome(str(row['status']), str(row['message']))
    except ray.exceptions.RayError as err:
        raise RayEngineError(f'the Ray pool failed ({_first_line(err)}); a rerun resumes, '
                             'skipping the finished outputs') from None
