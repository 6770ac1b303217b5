"""Speed and memory of a deployed model on PyTorch eager and each backend, in one run.

For every engine: latency (mean, median, p90, min over timed runs after warm-up), images/s,
output megapixels/s and achieved GFLOP/s (the model's convolution FLOPs per output pixel, read
from the ``.onnx``), and the peak resident set size (:mod:`mmdeploy_srcnn.profiling.memory`:
reset before each engine where Linux allows it; ``rss_delta_mb`` is the rise above the RSS
when that engine started). ONNX Runtime also gets a per-node time split
(:mod:`mmdeploy_srcnn.profiling.ort_nodes`), whose files go into ``work_dir/profile`` (or a
temporary directory that is removed afterwards).
"""
import contextlib
import dataclasses
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from mmdeploy_srcnn.apis.deploy import load_model, quantize_model
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.apis.rewrites import deploy_context
from mmdeploy_srcnn.backends import build_backend, validate_backend_config
from mmdeploy_srcnn.profiling import memory
from mmdeploy_srcnn.profiling.flops import FLOP_PER_MAC, conv_macs_per_output_pixel
from mmdeploy_srcnn.profiling.ort_nodes import NodeSplit, ort_node_split
from mmdeploy_srcnn.profiling.timing import LatencyStats, time_runs
from mmdeploy_srcnn.utils.logger import get_logger
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import (ENGINE_PRECISIONS, engine_precision_pairs,
                                            int8_model_path)

Runner = Callable[[], Any]


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


def _measure(engine: str, options: Dict[str, Any],
             build: Callable[[contextlib.ExitStack], Runner], warmup: int,
             iters: int) -> Tuple[EngineResult, Any]:
    """Build the engine (``build`` returns its run function and may enter contexts that stay
    open while it is timed), time it, record its peak RSS; also returns the last output."""
    memory.reset_peak_rss()
    start_rss = memory.peak_rss_mb()  # right after the reset: the current RSS
    with contextlib.ExitStack() as stack:
        run = build(stack)
        seconds = time_runs(run, warmup, iters)
        output = run()
    peak = memory.peak_rss_mb()
    result = EngineResult(engine=engine, options=options,
                          latency=LatencyStats.from_samples(seconds), peak_rss_mb=peak,
                          rss_delta_mb=peak - start_rss)
    return result, output


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


def random_inputs(convention: ModelConvention, shape: Tuple[int, int, int, int],
                  scale: Tuple[float, float], seed: int = 0) -> Dict[str, np.ndarray]:
    """A uniform random RGB batch in [0, 1] and the factor, as the model wants them."""
    image = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return convention.model_inputs(image, scale)


def profile_model(onnx_path: Path, backend_configs: Sequence[Mapping[str, Any]],
                  shape: Tuple[int, int, int, int], scale: Tuple[float, float],
                  warmup: int = 3, iters: int = 10, work_dir: Optional[Path] = None,
                  torch_model: Optional[nn.Module] = None,
                  deploy_cfg: Optional[Config] = None) -> ProfileReport:
    """Measure PyTorch eager (when ``torch_model`` and ``deploy_cfg`` are given) and every
    backend in ``backend_configs`` on the same inputs.

    PyTorch runs ``torch_model(image, factor_tensor)`` inside one deploy context (opened once,
    outside the timed calls), i.e. the path the verification compares with.
    """
    if (torch_model is None) != (deploy_cfg is None):
        raise ValueError('give both torch_model and deploy_cfg, or neither')
    if not backend_configs:
        raise ValueError('no backend to profile (backend_configs is empty)')
    onnx_path = Path(onnx_path)
    convention = ModelConvention.from_onnx(onnx_path)
    inputs = random_inputs(convention, shape, scale)
    memory_method = memory.method_description()
    results = []
    if torch_model is not None:
        image = torch.from_numpy(inputs[convention.image_input])
        factor = torch.from_numpy(inputs[convention.factor_input])

        def build_torch(stack: contextlib.ExitStack) -> Runner:
            stack.enter_context(deploy_context(deploy_cfg))
            stack.enter_context(torch.no_grad())
            return lambda: torch_model.eval()(image, factor)

        result, _ = _measure('pytorch', {'threads': torch.get_num_threads()}, build_torch,
                             warmup, iters)
        results.append(result)
    for backend_config in backend_configs:
        options = dict(backend_config)
        engine = options.pop('type')

        path = int8_model_path(onnx_path) if options.get('precision') == 'int8' else onnx_path

        def build_backend_runner(stack: contextlib.ExitStack,
                                 config: Mapping[str, Any] = backend_config,
                                 path: Path = path) -> Runner:
            backend = build_backend(config, path)
            return lambda: backend.run(inputs)

        label = f'{engine}/{options["precision"]}' if 'precision' in options else engine
        result, outputs = _measure(label, options, build_backend_runner, warmup, iters)
        if engine == 'onnxruntime' and options.get('precision', 'f32') == 'f32':
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


def backend_configs(names: Sequence[str], deploy_cfg: Optional[Config] = None,
                    precisions: Sequence[str] = ('f32',)) -> List[Dict[str, Any]]:
    """A backend config per name and precision it runs: the deploy config's own options for
    its backend type (e.g. threads), the wrapper's defaults for the others. Each is
    validated; a precision no named engine runs is an error naming the supported ones."""
    own = dict(deploy_cfg.backend_config) if deploy_cfg is not None else {}
    configs = []
    for name, precision in engine_precision_pairs(names, precisions):
        config = {**(own if own.get('type') == name else {'type': name}), 'precision': precision}
        if name not in ENGINE_PRECISIONS:
            config.pop('precision')  # engines without precisions (the reference evaluator)
        validate_backend_config(config)
        configs.append(config)
    return configs


def profile_config(deploy_cfg: Config, work_dir: Path, backends: Sequence[str],
                   shape: Tuple[int, int, int, int], scale: Tuple[float, float],
                   warmup: int, iters: int, checkpoint: Optional[Path],
                   precisions: Sequence[str] = ('f32',),
                   logger: Optional[MMLogger] = None) -> ProfileReport:
    """Export the config's model into ``work_dir`` (and its int8 model when int8 is among
    ``precisions``), then :func:`profile_model` it with PyTorch eager and ``backends`` at
    each precision they run."""
    configs = backend_configs(backends, deploy_cfg, precisions)  # before the export
    model = load_model(deploy_cfg, checkpoint)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    onnx_path = torch2onnx(model, deploy_cfg, Path(work_dir))
    if any(config.get('precision') == 'int8' for config in configs):
        quantize_model(onnx_path, Path(work_dir).resolve(), logger or get_logger())
    return profile_model(onnx_path, configs, shape, scale,
                         warmup=warmup, iters=iters, work_dir=work_dir, torch_model=model,
                         deploy_cfg=deploy_cfg)
