"""Trainer throughput of a config: training pairs/s end to end, and where the time goes (data vs model).

    python benchmarks/train_speed.py configs/bundled-224-chunk2.toml --steps 60              # GPU
    python benchmarks/train_speed.py configs/tiny-cpu.toml --steps 10 --batches 3          # CPU smoke run
    python benchmarks/train_speed.py configs/bundled-512-chunk12.toml --steps 60 --compile-blocks
    torchrun --nproc_per_node 2 benchmarks/train_speed.py configs/bundled-224-chunk2.toml --steps 60

Three measurements, each after warm-up, in this order:
  data   the batch stream alone (fetch or render, augmentation, ground truth) for --batches batches;
  model  forward, loss, backward and AdamW step on one fixed batch, --batches times;
  train  the trainer end to end for --steps steps (first 20 % not counted), as its metrics.csv reports,
         with the share of wall time the training loop waited for data.
With the data stream running ahead in its background thread, "train" approaches min(data, model).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from pointmap.train.config import TrainConfig, load_config
from pointmap.train.logs import read_metrics
from pointmap.train.trainer import Trainer, batch_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_rate(trainer: Trainer, batches: int) -> float:
    """Pairs/s of the training batch stream alone (one warm-up batch not counted)."""
    stream = iter(trainer.train_batches())
    next(stream)
    _sync(trainer.device)
    start, pairs = time.perf_counter(), 0
    for _ in range(batches):
        pairs += len(next(stream))
    _sync(trainer.device)
    return pairs / (time.perf_counter() - start)


def model_rate(trainer: Trainer, batches: int) -> float:
    """Pairs/s of training steps on one fixed batch (two warm-up steps not counted)."""
    batch = next(iter(trainer.train_batches()))
    params = [p for p in trainer.model.parameters() if p.requires_grad]

    def step() -> None:
        loss, _ = batch_loss(trainer.model, batch, trainer.config)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, trainer.config.optim.grad_clip or float("inf"))
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    _sync(trainer.device)
    start = time.perf_counter()
    for _ in range(batches):
        step()
    _sync(trainer.device)
    return batches * len(batch) / (time.perf_counter() - start)


def benchmark_config(config: TrainConfig, steps: int) -> TrainConfig:
    """`config` for a short timing run: `steps` steps, no evaluation, one checkpoint at the end."""
    optim = dataclasses.replace(config.optim, steps=steps, warmup_steps=min(config.optim.warmup_steps, 10))
    run = dataclasses.replace(config.run, log_every=1, eval_every=10**9, checkpoint_every=10**9)
    return dataclasses.replace(config, optim=optim, data=dataclasses.replace(config.data, eval=()), run=run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=60, help="end-to-end training steps")
    parser.add_argument("--batches", type=int, default=20, help="batches of the data-only and model-only timings")
    parser.add_argument("--batch", type=int, default=None, help="override data.batch_size")
    parser.add_argument("--workers", type=int, default=None, help="override data.num_workers")
    parser.add_argument("--prefetch", type=int, default=None, help="override data.prefetch")
    parser.add_argument("--render-steps", type=int, default=None, help="override data.render_steps")
    parser.add_argument("--compile-blocks", action="store_true", help="set run.compile_blocks (torch.compile)")
    args = parser.parse_args()
    config = load_config(args.config)
    if args.compile_blocks:
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, compile_blocks=True))
    overrides = {"batch_size": args.batch, "num_workers": args.workers, "prefetch": args.prefetch,
                 "render_steps": args.render_steps}
    data = dataclasses.replace(config.data, **{k: v for k, v in overrides.items() if v is not None})
    config = benchmark_config(dataclasses.replace(config, data=data), args.steps)
    with tempfile.TemporaryDirectory() as out:
        probe = Trainer(config, Path(out) / "probe", verbose=False)
        data_pairs = data_rate(probe, args.batches)
        model_pairs = model_rate(probe, args.batches)
        del probe
        trainer = Trainer(config, Path(out) / "train", verbose=False)
        start = time.perf_counter()
        trainer.fit()
        total = time.perf_counter() - start
        rows = read_metrics(Path(out) / "train" / "metrics.csv") if trainer.rank == 0 else []
    if dist.is_initialized():
        dist.destroy_process_group()
    if trainer.rank != 0:
        return
    counted = rows[max(1, len(rows) // 5) :]
    rates = [float(r["pairs_per_s"]) for r in counted]
    waits = [float(r["data_share"]) for r in counted]
    device = torch.cuda.get_device_name() if trainer.device.type == "cuda" else "cpu"
    world = trainer.world_size
    print(f"{args.config} on {device} x{world}, batch {config.data.batch_size}/process, accumulation "
          f"{config.optim.accumulation}, amp {config.optim.amp}, workers {config.data.num_workers}, "
          f"prefetch {config.data.prefetch}, render_steps {config.data.render_steps}, "
          f"compile_blocks {config.run.compile_blocks}")
    print(f"  data only : {data_pairs * world:8.1f} pairs/s (rank 0's stream x {world})")
    print(f"  model only: {model_pairs * world:8.1f} pairs/s (one fixed batch)")
    print(f"  training  : {statistics.median(rates):8.1f} pairs/s median, best {max(rates):.1f}; the loop waited "
          f"for data {100 * statistics.median(waits):.0f} % of the time; wall {total:.1f} s for {args.steps} steps")


if __name__ == "__main__":
    main()
