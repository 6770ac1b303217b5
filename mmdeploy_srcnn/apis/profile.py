"""Speed and memory of a deployed model on PyTorch eager and each backend, in one run.

For every engine: latency (mean, median, p90, min over timed runs after warm-up), images/s,
output megapixels/s and achieved GFLOP/s (the model's convolution FLOPs per output pixel, read
from the ``.onnx``: 40 kFLOP for SRCNN 9-1-5, whatever the scale), and the peak resident set
size (RSS high-water mark from ``resource.getrusage``, reset before each engine through
``/proc/self/clear_refs`` where Linux allows it, so each engine's peak is its own; it counts
the whole process, and ``rss_delta_mb`` is the rise above the RSS when that engine started).

With ONNX Runtime, a second session with ``enable_profiling`` runs the same inputs and the
JSON it writes is parsed into a per-node time split: by operator type, and by stage, where the
*resize* stage is every node the first convolution depends on (``Resize`` in the plain model,
the interpolation-matrix subgraph and its two ``MatMul`` in the matmul-resize model). That
session also writes ORT's optimised graph, whose node names the profile uses. Both files go
into ``work_dir`` (or a temporary directory that is removed afterwards).
"""
import contextlib
import dataclasses
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, \
    Tuple

import numpy as np
import onnx
import onnxruntime as ort
import torch
from mmengine.config import Config
from torch import nn

import mmdeploy_srcnn.pytorch  # noqa: F401  (registers the shipped rewriters)
from mmdeploy_srcnn.apis.deploy import check_backend_config, load_model
from mmdeploy_srcnn.apis.export import make_factor, torch2onnx
from mmdeploy_srcnn.backends import build_backend
from mmdeploy_srcnn.backends.onnxruntime import session_options
from mmdeploy_srcnn.core import RewriterContext
from mmdeploy_srcnn.utils.model_meta import ModelConvention

FLOP_PER_MAC = 2
_CONV_OPS = ('Conv', 'FusedConv')  # FusedConv: ONNX Runtime's Conv + activation
MEMORY_METHOD = 'peak RSS (resource.getrusage ru_maxrss, whole process), '
MEMORY_RESET = {True: 'reset per engine via /proc/self/clear_refs',
                False: 'NOT reset per engine (no /proc/self/clear_refs): peaks are cumulative'}
Runner = Callable[[], Any]


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


@dataclasses.dataclass(frozen=True)
class NodeSplit:
    """Where ONNX Runtime spends a run: shares (percent) of the summed node time."""

    by_op: Dict[str, float]
    stages: Dict[str, float]  # 'resize' (what the first convolution depends on), 'network'
    node_seconds: float  # mean per run, summed over nodes
    run_seconds: float  # mean model_run duration of the profiled session


@dataclasses.dataclass(frozen=True)
class EngineResult:
    """One engine's measurements."""

    engine: str
    options: Dict[str, Any]
    latency: LatencyStats
    peak_rss_mb: float
    rss_delta_mb: float
    node_split: Optional[NodeSplit] = None


@dataclasses.dataclass(frozen=True)
class ProfileReport:
    """Every engine on the same inputs; throughput figures use the median latency."""

    model: str
    input_shape: Tuple[int, ...]
    scale: Tuple[float, float]
    output_shape: Tuple[int, ...]
    macs_per_output_pixel: int
    warmup: int
    iters: int
    memory_method: str
    engines: List[EngineResult]

    @property
    def output_pixels(self) -> int:
        """Output pixels per run, over the batch."""
        batch, _, height, width = self.output_shape
        return batch * height * width

    @property
    def flop_per_run(self) -> float:
        return FLOP_PER_MAC * self.macs_per_output_pixel * self.output_pixels

    def throughput(self, result: EngineResult) -> Dict[str, float]:
        """images/s, output megapixels/s and achieved GFLOP/s at the median latency."""
        seconds = result.latency.median
        return {'images_per_s': self.output_shape[0] / seconds,
                'output_mpix_per_s': self.output_pixels / 1e6 / seconds,
                'gflop_per_s': self.flop_per_run / 1e9 / seconds}

    def as_dict(self) -> Dict[str, Any]:
        fields = {key: value for key, value in dataclasses.asdict(self).items()
                  if key != 'engines'}
        engines = [{**dataclasses.asdict(result), **self.throughput(result)}
                   for result in self.engines]
        return {**fields, 'flop_per_run': self.flop_per_run, 'engines': engines}


def conv_macs_per_output_pixel(onnx_path: Path) -> int:
    """Multiply-adds per output pixel of the model's convolutions, from their weights.

    Assumes every convolution runs at the output resolution (stride 1, 'same' padding, after
    the upscale), as in SRCNN. Raises ``ValueError`` for a model without convolutions.
    """
    graph = onnx.load(str(onnx_path)).graph
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    macs = 0
    for node in graph.node:
        if node.op_type != 'Conv':
            continue
        if node.input[1] not in weights:
            raise ValueError(f'{onnx_path}: Conv {node.name!r} has no constant weight')
        out_channels, in_per_group, *kernel = weights[node.input[1]]
        macs += out_channels * in_per_group * int(np.prod(kernel))
    if macs == 0:
        raise ValueError(f'{onnx_path}: no Conv nodes, cannot count FLOPs')
    return macs


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


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure(engine: str, options: Dict[str, Any],
             build: Callable[[contextlib.ExitStack], Runner], warmup: int,
             iters: int) -> Tuple[EngineResult, Any]:
    """Build the engine (``build`` returns its run function and may enter contexts that stay
    open while it is timed), time it, record its peak RSS; also returns the last output."""
    _reset_peak_rss()
    start_rss = _peak_rss_mb()  # right after the reset: the current RSS
    with contextlib.ExitStack() as stack:
        run = build(stack)
        seconds = time_runs(run, warmup, iters)
        output = run()
    peak = _peak_rss_mb()
    result = EngineResult(engine=engine, options=options,
                          latency=LatencyStats.from_samples(seconds), peak_rss_mb=peak,
                          rss_delta_mb=peak - start_rss)
    return result, output


def _stage_nodes(graph: onnx.GraphProto) -> Set[str]:
    """Names of the nodes the first convolution depends on (the upscaling stage)."""
    producers = {output: node for node in graph.node for output in node.output}
    first_conv = next((node for node in graph.node if node.op_type in _CONV_OPS), None)
    if first_conv is None:
        return set()
    stage: Set[str] = set()
    pending = [name for name in first_conv.input if name in producers]
    while pending:
        node = producers[pending.pop()]
        if node.name not in stage:
            stage.add(node.name)
            pending.extend(name for name in node.input if name in producers)
    return stage


def ort_node_split(onnx_path: Path, backend_config: Mapping[str, Any],
                   inputs: Mapping[str, np.ndarray], warmup: int, iters: int,
                   out_dir: Path) -> NodeSplit:
    """Profile ``iters`` runs (after ``warmup``) in an ORT session with ``backend_config``'s
    options and ``enable_profiling``; parse the JSON it writes into ``out_dir``."""
    options = session_options(backend_config.get('threads'),
                              backend_config.get('optimization_level', 'all'))
    options.enable_profiling = True
    options.profile_file_prefix = str(out_dir / 'ort_profile')
    optimized_path = out_dir / 'ort_optimized.onnx'
    options.optimized_model_filepath = str(optimized_path)
    options.log_severity_level = 3  # not the "hardware-specific optimised model" warning
    session = ort.InferenceSession(str(onnx_path), options, providers=['CPUExecutionProvider'])
    for _ in range(warmup + iters):
        session.run(None, dict(inputs))
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e for e in events if e.get('name') == 'model_run'), key=lambda e: e['ts'])
    timed_from = runs[warmup]['ts']
    stage = _stage_nodes(onnx.load(str(optimized_path)).graph)
    by_op: Dict[str, float] = {}
    by_stage = {'resize': 0.0, 'network': 0.0}
    suffix = '_kernel_time'
    for event in events:
        if (event.get('cat') != 'Node' or not event['name'].endswith(suffix)
                or event['ts'] < timed_from):
            continue
        op_type = event['args']['op_name']
        by_op[op_type] = by_op.get(op_type, 0.0) + event['dur']
        by_stage['resize' if event['name'][:-len(suffix)] in stage else 'network'] += event['dur']
    total = sum(by_op.values())
    if total <= 0:
        raise RuntimeError(f'{onnx_path}: the ONNX Runtime profile has no node timings')
    return NodeSplit(
        by_op={op: 100 * dur / total for op, dur in sorted(by_op.items(), key=lambda i: -i[1])},
        stages={name: 100 * dur / total for name, dur in by_stage.items()},
        node_seconds=total / 1e6 / iters,
        run_seconds=statistics.fmean(e['dur'] for e in runs[warmup:]) / 1e6)


def make_inputs(convention: ModelConvention, shape: Tuple[int, int, int, int],
                scale: Tuple[float, float], seed: int = 0) -> Dict[str, np.ndarray]:
    """A uniform random image batch in [0, 1] and the factor, named as the model wants."""
    image = np.random.default_rng(seed).random(shape, dtype=np.float32)
    factor = make_factor(scale, convention.factor_format).numpy()
    return {convention.image_input: image, convention.factor_input: factor}


def profile_model(onnx_path: Path, backend_configs: Sequence[Mapping[str, Any]],
                  shape: Tuple[int, int, int, int], scale: Tuple[float, float],
                  warmup: int = 3, iters: int = 10, work_dir: Optional[Path] = None,
                  torch_model: Optional[nn.Module] = None,
                  deploy_cfg: Optional[Config] = None) -> ProfileReport:
    """Measure PyTorch eager (when ``torch_model`` and ``deploy_cfg`` are given) and every
    backend in ``backend_configs`` on the same inputs.

    PyTorch runs ``torch_model(image, factor_tensor)`` inside one ``RewriterContext`` for the
    deploy config's backend (opened once, outside the timed calls), i.e. the path the
    verification compares with.
    """
    if (torch_model is None) != (deploy_cfg is None):
        raise ValueError('give both torch_model and deploy_cfg, or neither')
    if not backend_configs:
        raise ValueError('no backend to profile (backend_configs is empty)')
    onnx_path = Path(onnx_path)
    metadata = onnx.load(str(onnx_path), load_external_data=False).metadata_props
    convention = ModelConvention.from_metadata({p.key: p.value for p in metadata})
    inputs = make_inputs(convention, shape, scale)
    memory_method = MEMORY_METHOD + MEMORY_RESET[_reset_peak_rss()]
    results = []
    if torch_model is not None:
        image = torch.from_numpy(inputs[convention.image_input])
        factor = torch.from_numpy(inputs[convention.factor_input])

        def build_torch(stack: contextlib.ExitStack) -> Runner:
            stack.enter_context(RewriterContext(deploy_cfg,
                                                backend=deploy_cfg.backend_config.type))
            stack.enter_context(torch.no_grad())
            return lambda: torch_model.eval()(image, factor)

        result, _ = _measure('pytorch', {'threads': torch.get_num_threads()}, build_torch,
                             warmup, iters)
        results.append(result)
    for backend_config in backend_configs:
        options = dict(backend_config)
        engine = options.pop('type')

        def build_backend_runner(stack: contextlib.ExitStack,
                                 config: Mapping[str, Any] = backend_config) -> Runner:
            backend = build_backend(config, onnx_path)
            return lambda: backend.run(inputs)

        result, outputs = _measure(engine, options, build_backend_runner, warmup, iters)
        if engine == 'onnxruntime':
            with _profile_dir(work_dir) as out_dir:
                split = ort_node_split(onnx_path, backend_config, inputs, warmup, iters,
                                       out_dir)
            result = dataclasses.replace(result, node_split=split)
        results.append(result)
    return ProfileReport(model=str(onnx_path), input_shape=tuple(shape),
                         scale=tuple(scale), output_shape=tuple(outputs[convention.output].shape),
                         macs_per_output_pixel=conv_macs_per_output_pixel(onnx_path),
                         warmup=warmup, iters=iters, memory_method=memory_method,
                         engines=results)


@contextlib.contextmanager
def _profile_dir(work_dir: Optional[Path]) -> Iterator[Path]:
    """``work_dir/profile`` (kept), or a temporary directory removed on exit."""
    if work_dir is not None:
        path = Path(work_dir) / 'profile'
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix='mmdeploy_srcnn_profile_') as temp:
        yield Path(temp)


def backend_configs(names: Sequence[str],
                    deploy_cfg: Optional[Config] = None) -> List[Dict[str, Any]]:
    """A backend config per name: the deploy config's own for its backend type (its options,
    e.g. threads), the wrapper's defaults for the others."""
    own = dict(deploy_cfg.backend_config) if deploy_cfg is not None else {}
    return [own if own.get('type') == name else {'type': name} for name in names]


def profile_config(deploy_cfg: Config, work_dir: Path, backends: Sequence[str],
                   shape: Tuple[int, int, int, int], scale: Tuple[float, float],
                   warmup: int, iters: int, checkpoint: Optional[str],
                   logger: Any) -> ProfileReport:
    """Export the config's model into ``work_dir``, then :func:`profile_model` it with PyTorch
    eager and ``backends``."""
    configs = backend_configs(backends, deploy_cfg)
    for config in configs:
        check_backend_config(config)  # before the export, not after it
    model = load_model(deploy_cfg, checkpoint, logger)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    onnx_path = torch2onnx(model, deploy_cfg, Path(work_dir))
    return profile_model(onnx_path, configs, shape, scale,
                         warmup=warmup, iters=iters, work_dir=work_dir, torch_model=model,
                         deploy_cfg=deploy_cfg)


def format_report(report: ProfileReport) -> str:
    """The report as a text table, plus ONNX Runtime's node split when measured."""
    batch, _, height, width = report.output_shape
    lines = [f'{report.model}: input {"x".join(map(str, report.input_shape))} x'
             f'{report.scale[0]:g}x{report.scale[1]:g} -> output {batch}x3x{height}x{width}, '
             f'{report.flop_per_run / 1e9:.1f} GFLOP per run '
             f'({FLOP_PER_MAC * report.macs_per_output_pixel / 1e3:g} kFLOP per output pixel); '
             f'{report.iters} timed runs after {report.warmup} warm-up',
             f'{"engine":<12}{"median ms":>10}{"mean ms":>9}{"p90 ms":>9}{"min ms":>9}'
             f'{"img/s":>8}{"MP/s":>7}{"GFLOP/s":>9}{"peak RSS MB":>13}{"(+MB)":>8}']
    for result in report.engines:
        latency = result.latency
        rate = report.throughput(result)
        lines.append(f'{result.engine:<12}{1e3 * latency.median:>10.1f}{1e3 * latency.mean:>9.1f}'
                     f'{1e3 * latency.p90:>9.1f}{1e3 * latency.min:>9.1f}'
                     f'{rate["images_per_s"]:>8.2f}{rate["output_mpix_per_s"]:>7.2f}'
                     f'{rate["gflop_per_s"]:>9.1f}{result.peak_rss_mb:>13.0f}'
                     f'{result.rss_delta_mb:>+8.0f}')
    for result in report.engines:
        split = result.node_split
        if split is None:
            continue
        ops = ', '.join(f'{op} {share:.1f}%' for op, share in split.by_op.items() if share >= 0.5)
        lines.append(f'{result.engine} node time {1e3 * split.node_seconds:.1f} ms of '
                     f'{1e3 * split.run_seconds:.1f} ms per profiled run: resize stage '
                     f'{split.stages["resize"]:.1f}%, network {split.stages["network"]:.1f}% '
                     f'| {ops}')
    lines.append(f'memory: {report.memory_method}')
    return '\n'.join(lines)
