"""Where ONNX Runtime spends a run: a per-node time split from its own profiler.

A second session with ``enable_profiling`` runs the same inputs; the JSON it writes is parsed
into shares by operator type and by stage, where the *resize* stage is every node the first
convolution depends on (``Resize`` in the plain model, the interpolation-matrix subgraph and
its two ``MatMul`` in the matmul-resize model). That session also writes ORT's optimised
graph, whose node names the profile uses.
"""
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any, Dict, Mapping, Set

import numpy as np
import onnx
import onnxruntime as ort

from mmdeploy_srcnn.backends.onnxruntime import session_options

_CONV_OPS = ('Conv', 'FusedConv')  # FusedConv: ONNX Runtime's Conv + activation


@dataclasses.dataclass(frozen=True)
class NodeSplit:
    """Where ONNX Runtime spends a run: shares (percent) of the summed node time."""

    by_op: Dict[str, float]
    stages: Dict[str, float]  # 'resize' (what the first convolution depends on), 'network'
    node_seconds: float  # mean per run, summed over nodes
    run_seconds: float  # mean model_run duration of the profiled session


def stage_nodes(graph: onnx.GraphProto) -> Set[str]:
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
    session = ort.InferenceSession(str(onnx_path), options, providers=['CPUExecutionProvider'])
    for _ in range(warmup + iters):
        session.run(None, dict(inputs))
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e for e in events if e.get('name') == 'model_run'), key=lambda e: e['ts'])
    timed_from = runs[warmup]['ts']
    stage = stage_nodes(onnx.load(str(optimized_path)).graph)
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
