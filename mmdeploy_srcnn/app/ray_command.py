"""``srcnn-upscale --engine ray``: plan with resuming, run the jobs on a Ray Data pool, keep the
summary (``OUT/srcnn-upscale-summary.json``). The per-image work is :mod:`.batch`'s, the pool
:mod:`.ray_engine`'s; this module is the command around them.
"""
import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from mmengine.utils import ProgressBar

from mmdeploy_srcnn.backends import BackendError
from mmdeploy_srcnn.utils.fileio import file_sha256, printable
from mmdeploy_srcnn.utils.scale import format_scale

from .batch import DONE, FAILED, Failure, Job, is_done, plan_jobs
from .cli import (EXIT_USER_ERROR, cpu_count, image_settings, print_errors, upscaler_options, warn,
                  warn_about_model)
from .ray_engine import (ClusterCpus, Pool, RayEngineError, ray_cluster, remove_leftovers,
                         upscale_on_ray)
from .run_summary import RunSettings, RunSummary, SummaryError, check_resume, read_previous_settings
from .upscaler import Upscaler


def _ray_pool(args: argparse.Namespace, cpus: ClusterCpus, jobs: int) -> Pool:
    """Workers and threads per worker, capped at what the cluster can place (a pool that
    cannot be placed would wait forever)."""
    threads = args.threads or 1
    if threads > cpus.largest_node:
        warn(f'--threads {threads} is more than the {cpus.largest_node} CPUs of the largest '
             f'Ray node; using {cpus.largest_node}')
        threads = cpus.largest_node
    most = max(1, cpus.total // threads)
    workers = args.workers or most
    if workers > most:
        warn(f'--workers {workers} with {threads} thread(s) each needs {workers * threads} '
             f'CPUs, Ray has {cpus.total}; using {most} workers')
        workers = most
    return Pool(min(workers, jobs), threads)


def _run_pool(jobs: List[Job], args: argparse.Namespace, model: Path,
              outcomes: Dict[int, Tuple[str, str]]) -> Pool:
    """Run ``jobs`` on a Ray Data pool, filling ``outcomes`` (job index -> status, message)
    as they come back; returns the pool's size. A progress bar is shown on a terminal.

    On Ctrl-C the pool is stopped (a local Ray until its processes are gone) and the
    temporary files of the images that were being written are removed; an image whose
    outputs were published before its row came back counts as done (outputs appear complete
    or not at all, and the plan refused or skipped every output that existed before).
    """
    try:
        with ray_cluster(args.ray_address, cpu_count()) as cpus:
            pool = _ray_pool(args, cpus, len(jobs))
            bar = ProgressBar(len(jobs), file=sys.stderr) \
                if not args.quiet and sys.stderr.isatty() else None
            for index, outcome in upscale_on_ray(jobs, model, upscaler_options(args, pool.threads),
                                                 image_settings(args), pool):
                outcomes[index] = (outcome.status, outcome.message)
                if bar is not None:
                    bar.update()
            if bar is not None:
                sys.stderr.write('\n')
            return pool
    except KeyboardInterrupt:
        unreported = [index for index in range(len(jobs)) if index not in outcomes]
        remove_leftovers([jobs[index] for index in unreported])
        outcomes.update((index, (DONE, '')) for index in unreported if is_done(jobs[index]))
        raise


def main_ray(args: argparse.Namespace, sources: List[Path], errors: List[Failure],
             requested: int, started: float) -> int:
    """``--engine ray``: plan with resuming, run the jobs on a Ray Data pool, keep the summary.

    The model is loaded here first, so a bad model is one error before Ray starts.
    """
    out_dir, model = args.out_dir.absolute(), args.model.absolute()
    jobs, skipped = plan_jobs(sources, None, out_dir, args.compare, args.overwrite, errors,
                              skip_done=True)
    try:
        upscaler = Upscaler(model, **upscaler_options(args, 1))
        warn_about_model(args.model, upscaler)
        # Resolved here, once: every worker runs this precision (a node that cannot fails its
        # rows), and the summary records it, so a resume on another CPU cannot mix precisions.
        args = argparse.Namespace(**{**vars(args), 'precision': upscaler.precision})
        ran_on = f'{args.backend} {upscaler.precision}'
        del upscaler  # the workers load their own; this one only resolved and checked
        settings = RunSettings(file_sha256(model), args.scale, args.backend, args.precision)
        previous = read_previous_settings(out_dir)  # a file of that name not ours: refused
        if skipped:
            check_resume(previous, settings, out_dir)
    except (BackendError, SummaryError) as err:  # nothing ran
        print_errors(errors + [Failure(None, str(err))])
        return EXIT_USER_ERROR
    summary = RunSummary(out_dir, 'ray', settings, model)
    for job in skipped:
        summary.add_skipped(job.source, job.output, 'output exists')
    for failure in errors:
        summary.add_failed(failure.path, failure.message)
    summary.write('running', time.perf_counter() - started)
    outcomes: Dict[int, Tuple[str, str]] = {}
    pool = None
    state = 'finished'
    try:
        pool = _run_pool(jobs, args, model, outcomes) if jobs else None
    except RayEngineError as err:
        errors.append(Failure(None, str(err)))
        state = 'engine failed'
    except KeyboardInterrupt:
        _record(summary, jobs, outcomes, errors)
        summary.write('interrupted', time.perf_counter() - started, len(jobs) - len(outcomes))
        raise
    _record(summary, jobs, outcomes, errors)
    summary.write(state, time.perf_counter() - started, len(jobs) - len(outcomes))
    print_errors(errors)
    if not args.quiet:
        done = len(summary.done)
        parts = [f'{done} of {requested} images upscaled at x{format_scale(args.scale)} '
                 f'({ran_on})']
        if skipped:
            parts.append(f'{len(skipped)} skipped (done before)')
        not_run = len(jobs) - len(outcomes)  # the pool stopped before reaching them
        failed = requested - done - len(skipped) - not_run
        if failed:
            parts.append(f'{failed} failed')
        if not_run:
            parts.append(f'{not_run} not run')
        where = '' if pool is None else \
            f' on Ray ({_count(pool.workers, "worker")}, {_count(pool.threads, "thread")} each)'
        print(f'{", ".join(parts)} in {time.perf_counter() - started:.1f} s{where}; '
              f'summary: {printable(summary.path)}')
    return EXIT_USER_ERROR if errors else 0


def _count(number: int, noun: str) -> str:
    return f'{number} {noun}{"" if number == 1 else "s"}'


def _record(summary: RunSummary, jobs: List[Job], outcomes: Dict[int, Tuple[str, str]],
            errors: List[Failure]) -> None:
    """Move the workers' outcomes into the summary, failures also into ``errors``."""
    for index, (status, message) in sorted(outcomes.items()):
        job = jobs[index]
        if status == DONE:
            summary.add_done(job.source, job.output)
        elif status == FAILED:
            summary.add_failed(job.source, message)
            errors.append(Failure(job.source, message))
