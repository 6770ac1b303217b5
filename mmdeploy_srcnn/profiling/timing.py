"""Latency over repeated calls: timed runs after warm-up, and their statistics."""
import dataclasses
import statistics
import time
from typing import Any, Callable, List, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Seconds per run over the timed runs."""

    mean: float
    median: float
    p90: float
    min: float

    @classmethod
    def from_samples(cls, seconds: Sequence[float]) -> 'LatencyStats':
        if not seconds:
            raise ValueError('no timed runs (iters must be >= 1)')
        ordered = sorted(seconds)
        p90 = ordered[min(len(ordered) - 1, int(np.ceil(0.9 * len(ordered))) - 1)]
        return cls(mean=statistics.fmean(ordered), median=statistics.median(ordered), p90=p90,
                   min=ordered[0])


def time_runs(run: Callable[[], Any], warmup: int, iters: int) -> List[float]:
    """Seconds of each of ``iters`` calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds
