"""Train one SRCNN for every upscale factor in a range, on the built-in training images.

    python tools/train.py configs/srcnn_train.py [--work-dir DIR] [--cfg-options key=value ...]

Each batch uses one scale drawn from the config's list; the LR input is made with the
MATLAB-style antialiased bicubic of the evaluation protocol and the model upsamples it with its
own (PyTorch) bicubic, exactly as at deployment. ``train.loss_margin`` output pixels at the
patch border can be left out of the loss; the shipped config keeps them (0), because near the
border a patch sees the same zero padding and clamping as an image does, and a model that never
trained there loses up to 0.12 dB at test time. Each batch's MSE is divided by the mean bicubic
MSE at its scale, so that all scales count alike. The checkpoint is written atomically with its
training metadata.
"""
import argparse
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from torch import Tensor, nn

from mmdeploy_srcnn.apis.config import ConfigError, load_config
from mmdeploy_srcnn.datasets import load_split
from mmdeploy_srcnn.datasets.pairs import PairSampler
from mmdeploy_srcnn.models import save_checkpoint
from mmdeploy_srcnn.registry import MODELS
from mmdeploy_srcnn.utils.cli import OneLineArgumentParser, line_buffered_stdout


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='exit status: 0 when training finished, 2 on bad input (one line on stderr).')
    parser.add_argument('config', help='training config file')
    parser.add_argument('--work-dir', help='where the log and checkpoint go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. train.iterations=100')
    return parser.parse_args(argv)


def plain(value: Any) -> Any:
    """Config values as plain Python types (tuples become lists), for a weights-only checkpoint."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def lr_factor(iteration: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay from 1 to ``min_ratio`` of the base learning rate."""
    if iteration < warmup:
        return (iteration + 1) / warmup
    progress = (iteration - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def inner(margin: int) -> Tuple:
    """Index of the pixels more than ``margin`` away from the patch border."""
    return (Ellipsis, slice(margin, -margin), slice(margin, -margin)) if margin else Ellipsis


def upsample(lr: Tensor, scale: float) -> Tensor:
    """The model's own bicubic upsampling, the baseline its residual corrects."""
    return F.interpolate(lr, scale_factor=scale, mode='bicubic', align_corners=False)


def bicubic_mse_by_scale(sampler: PairSampler, margin: int, batches: int,
                         batch_size: int) -> Dict[float, float]:
    """Mean MSE of the bicubic upsample against HR at each scale, on sampled patches.

    Dividing each batch's MSE by its scale's value makes every scale count alike (otherwise
    the large errors at x4 dominate and x1.5 ends up worse than bicubic), while within a scale
    patches keep their weight by error, as in the PSNR of a whole image.
    """
    errors = {}
    for scale in sampler.scales:
        total = 0.0
        for _ in range(batches):
            _, lr, hr = sampler.sample(batch_size, scale)
            baseline = upsample(torch.from_numpy(lr), scale)
            total += F.mse_loss(baseline[inner(margin)], torch.from_numpy(hr)[inner(margin)]).item()
        errors[scale] = total / batches
    return errors


def train_step(model: nn.Module, batch: Tuple[float, np.ndarray, np.ndarray], margin: int,
               norm: Dict[float, float]) -> Tuple[Tensor, float]:
    """Forward one batch; returns the normalised loss and the batch's PSNR gain in dB.

    The loss is the MSE divided by ``norm[scale]``, the typical bicubic MSE at the batch's
    scale. The gain (over the model's bicubic upsample) is for the log.
    """
    scale, lr, hr = batch
    lr, hr = torch.from_numpy(lr), torch.from_numpy(hr)
    output = model(lr, scale)
    if output.shape != hr.shape:
        raise RuntimeError(f'model output {tuple(output.shape)} does not match the HR patch '
                           f'{tuple(hr.shape)} at scale {scale}')
    mse = F.mse_loss(output[inner(margin)], hr[inner(margin)])
    with torch.no_grad():
        baseline_mse = F.mse_loss(upsample(lr, scale)[inner(margin)], hr[inner(margin)])
        gain = 10 * math.log10(baseline_mse.item() / max(mse.item(), 1e-12))
    return mse / norm[scale], gain


def build_sampler(data: Config, seed: int) -> Tuple[PairSampler, List[str]]:
    """The patch sampler over the configured images and scales, and the images' names."""
    images = load_split(data.split)
    sampler = PairSampler(list(images.values()), data.scales, data.get('scale_weights'),
                          data.patch_size, data.min_std, seed=seed)
    return sampler, list(images)


def fit(model: nn.Module, sampler: PairSampler, opts: Config,
        logger: MMLogger) -> Dict[str, float]:
    """The optimisation loop; returns the loss and train gain averaged over the last window."""
    if opts.iterations < 1:
        raise ValueError(f'train.iterations must be >= 1, got {opts.iterations}')
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: lr_factor(i, opts.iterations, opts.warmup, opts.min_lr_ratio))
    norm = bicubic_mse_by_scale(sampler, opts.loss_margin, opts.norm_batches, opts.batch_size)
    logger.info('bicubic MSE by scale: '
                + ', '.join(f'x{scale:g} {mse:.2e}' for scale, mse in norm.items()))
    start = time.time()
    window_loss, window_gain, window_norm, stats = [], [], [], {}
    for iteration in range(opts.iterations):
        loss, gain = train_step(model, sampler.sample(opts.batch_size), opts.loss_margin, norm)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f'loss became {loss.item()} at iteration {iteration + 1}')
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # The norm is logged; it is clipped only when train.grad_clip is set.
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip or math.inf)
        optimizer.step()
        scheduler.step()
        window_loss.append(loss.item())
        window_gain.append(gain)
        window_norm.append(grad_norm.item())
        done = iteration + 1
        if done % opts.log_interval == 0 or done == opts.iterations:
            elapsed = time.time() - start
            stats = {'final_loss': float(np.mean(window_loss)),
                     'final_train_gain_db': float(np.mean(window_gain))}
            logger.info(f'iter {done}/{opts.iterations} loss {stats["final_loss"]:.4f} '
                        f'gain {stats["final_train_gain_db"]:+.3f} dB grad norm '
                        f'{np.median(window_norm):.3g} (max {np.max(window_norm):.3g}) '
                        f'lr {scheduler.get_last_lr()[0]:.2e} {done / elapsed:.1f} it/s '
                        f'eta {elapsed / done * (opts.iterations - done) / 60:.1f} min')
            window_loss, window_gain, window_norm = [], [], []
    return stats


def check_trainable_convention(model: nn.Module) -> None:
    """This trainer feeds RGB in [0, 1]: refuse a model that declares anything else."""
    from mmdeploy_srcnn.apis.export import declared_convention

    declared = declared_convention(model)
    wanted = {'color_order': 'RGB', 'value_range': (0.0, 1.0)}
    wrong = {key: declared[key] for key, value in wanted.items()
             if key in declared and declared[key] != value}
    if wrong:
        raise SystemExit(f'train.py: error: {type(model).__name__} declares {wrong}; this '
                         'trainer feeds RGB images in [0, 1] only')


def train(cfg: Config, work_dir: Path, command: str) -> Dict:
    """Run the training described by ``cfg``; returns the metadata saved with the checkpoint."""
    opts, data = cfg.train, cfg.data
    work_dir.mkdir(parents=True, exist_ok=True)
    logger = MMLogger.get_instance(f'srcnn_train_{time.time_ns()}', logger_name='srcnn_train',
                                   log_file=str(work_dir / 'train.log'))
    torch.set_num_threads(opts.num_threads)
    torch.manual_seed(opts.seed)
    logger.info(f'command: {command}\nconfig:\n{cfg.pretty_text}')
    start = time.time()
    sampler, names = build_sampler(data, opts.seed)
    logger.info(f'{len(names)} source images, {len(data.scales)} scales, '
                f'{sum(len(pool.pairs) for pool in sampler.pools)} LR/HR pairs')
    model = MODELS.build(cfg.model)
    check_trainable_convention(model)
    if opts.init == 'identity':
        model.init_identity()
    stats = fit(model, sampler, opts, logger)

    meta = {
        'model_type': cfg.model.type,
        'model': {key: plain(value) for key, value in cfg.model.items() if key != 'type'},
        'data': plain(data.to_dict()),
        'images': names,
        'train': plain(opts.to_dict()),
        'iterations': int(opts.iterations),
        'batch_size': int(opts.batch_size),
        'seed': int(opts.seed),
        'scales': [float(s) for s in data.scales],
        **stats,
        'wall_time_s': round(time.time() - start, 1),
        'command': command,
        'torch': str(torch.__version__),
    }
    checkpoint = work_dir / cfg.checkpoint_name
    save_checkpoint(model, checkpoint, meta)
    logger.info(f'saved {checkpoint} after {meta["wall_time_s"] / 60:.1f} min, '
                f'final loss {stats["final_loss"]:.4f}')
    return meta


def main(argv: Optional[List[str]] = None) -> None:
    line_buffered_stdout()
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
    except ConfigError as err:
        raise SystemExit(f'train.py: error: {err}') from None
    work_dir = Path(args.work_dir or Path('work_dirs') / Path(args.config).stem)
    command = shlex.join(['python', 'tools/train.py', *(sys.argv[1:] if argv is None else argv)])
    train(cfg, work_dir, command)


if __name__ == '__main__':
    main()
