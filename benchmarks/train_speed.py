"""Trainer throughput: training pairs/s of a config end to end (data, augmentation, forward, loss,
backward, AdamW step), as the trainer's own metrics.csv reports it.

    python benchmarks/train_speed.py configs/synthetic-224-gpu.toml --steps 60          # GPU
    python benchmarks/train_speed.py configs/tiny-cpu.toml --steps 20                   # CPU smoke run
    torchrun --nproc_per_node 2 benchmarks/train_speed.py configs/synthetic-224-gpu.toml --steps 60

The run goes to a temporary folder (no evaluation, one checkpoint at the end); the first 20% of the
steps are warm-up and not counted.
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

from pointmap.train.config import load_config
from pointmap.train.logs import read_metrics
from pointmap.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=None, help="override data.batch_size")
    args = parser.parse_args()
    config = load_config(args.config)
    optim = dataclasses.replace(config.optim, steps=args.steps, warmup_steps=min(config.optim.warmup_steps, 10))
    data = dataclasses.replace(config.data, eval=(), batch_size=args.batch or config.data.batch_size)
    run = dataclasses.replace(config.run, log_every=1, eval_every=10**9, checkpoint_every=10**9)
    config = dataclasses.replace(config, optim=optim, data=data, run=run)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, out, verbose=False)
        start = time.perf_counter()
        trainer.fit()
        total = time.perf_counter() - start
        rates = [float(r["pairs_per_s"]) for r in read_metrics(Path(out) / "metrics.csv")] if trainer.rank == 0 else []
    if dist.is_initialized():
        dist.destroy_process_group()
    if trainer.rank != 0:
        return
    counted = rates[max(1, len(rates) // 5) :]
    device = torch.cuda.get_device_name() if trainer.device.type == "cuda" else "cpu"
    print(f"{args.config} on {device} x{trainer.world_size}, batch {config.data.batch_size}/process, "
          f"accumulation {config.optim.accumulation}, amp {config.optim.amp}")
    print(f"  training pairs/s (all processes): median {statistics.median(counted):.1f}, best {max(counted):.1f}; "
          f"wall {total:.1f} s for {args.steps} steps (start-up and final checkpoint included)")


if __name__ == "__main__":
    main()
