"""The training loop: AdamW with warm-up + cosine, bf16 autocast, accumulation, DDP, checkpoints and logs.

Run on one process (`train_from_config`) or many (`torchrun --nproc_per_node N -m pointmap.train.trainer
CONFIG OUT`): with torchrun's environment set, each process trains its slice of every global batch
under DistributedDataParallel (NCCL on GPUs, gloo on CPU) and rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pointmap.data.mix import build_mix
from pointmap.data.pairs import PairBatch
from pointmap.io_utils import atomic_write_text
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R
from pointmap.model.weights import load_model, save_model
from pointmap.train.batches import StepBatches, collate_raw, make_pair_batch
from pointmap.train.checkpoint import (
    MANIFEST,
    checkpoint_name,
    list_checkpoints,
    load_checkpoint,
    model_from_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from pointmap.train.config import TrainConfig, load_config
from pointmap.train.logs import MetricsLog
from pointmap.train.losses import pair_loss
from pointmap.train.sampling import SeededPairs, StepBatchSampler, eval_batches
from pointmap.train.schedule import learning_rate

# Parameter name prefixes of the shared image encoder (DUSt3R's official names).
ENCODER_PREFIXES = ("patch_embed.", "enc_blocks.", "enc_norm.")


def _distributed_setup() -> tuple[int, int, torch.device]:
    """(rank, world_size, device) from torchrun's environment; initialises the process group if > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world_size, device


def initial_model(config: TrainConfig, device: torch.device) -> DUSt3R:
    """The network to train: from scratch (seeded by run.seed) or loaded from `model.weights`.

    `model.weights` is what `load_model` takes, "bundled" for the bundled default model, or a training
    checkpoint folder (`step-XXXXXXXX/` of another run: its weights, not its optimizer state or step).
    """
    if config.model.init == "weights":
        weights = config.model.weights
        if not weights:
            raise ValueError("model.init = 'weights' needs model.weights (an official .pth, a folder, a hub id, "
                             "'bundled' or a checkpoint folder)")
        if (Path(weights) / MANIFEST).is_file():
            model = model_from_checkpoint(Path(weights), device=device)
        else:
            model = load_model(None if weights == "bundled" else weights, device=device)
    elif config.model.init == "scratch":
        torch.manual_seed(config.run.seed)
        model = DUSt3R(ModelConfig.from_dict(dict(config.model.config))).to(device)
    else:
        raise ValueError(f"model.init = {config.model.init!r}; pick 'scratch' or 'weights'")
    if config.model.image_size is not None:
        if config.model.init != "weights":
            raise ValueError("model.image_size is for init = 'weights'; from scratch, set model.config.image_size")
        if config.model.image_size not in (224, 512):
            raise ValueError(f"model.image_size = {config.model.image_size}; pick 224 or 512")
        model.config = dataclasses.replace(model.config, image_size=config.model.image_size)
    for name, param in model.named_parameters():
        param.requires_grad_(not (config.model.freeze_encoder and name.startswith(ENCODER_PREFIXES)))
    freeze_unused(model)
    return model.train()


def freeze_unused(model: DUSt3R) -> list[str]:
    """Stop training the parameters no output depends on; returns their names.

    Such parameters (CroCo's mask token, kept only so official checkpoints load strictly, or a head
    layer a configuration bypasses) never get a gradient, and DDP would wait for theirs forever. One
    forward/backward pass on a blank pair finds them.
    """
    side = 4 * model.config.patch_size
    blank = torch.zeros(1, 3, side, side, device=next(model.parameters()).device)
    out = model(blank, blank)
    (out.pts1.sum() + out.conf1.sum() + out.pts2.sum() + out.conf2.sum()).backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    for name, param in model.named_parameters():
        param.grad = None
        if name in unused:
            param.requires_grad_(False)
    return unused


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; biases and normalisation weights (1-D) get no weight decay.
    On a GPU it is the fused implementation (one kernel for the whole update)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for _, p in trainable if p.ndim > 1], "weight_decay": config.optim.weight_decay},
        {"params": [p for _, p in trainable if p.ndim <= 1], "weight_decay": 0.0},
    ]
    fused = all(p.is_cuda for _, p in trainable)
    return torch.optim.AdamW(groups, lr=config.optim.lr, betas=config.optim.betas, fused=fused or None)


def batch_loss(model: nn.Module, batch: PairBatch, config: TrainConfig) -> tuple[torch.Tensor, dict]:
    """Forward a batch (under bf16 autocast if configured) and return the loss and its parts."""
    with torch.autocast(batch.img1.device.type, dtype=torch.bfloat16, enabled=config.optim.amp == "bf16"):
        out = model(batch.img1, batch.img2)
    return pair_loss(out.pts1, out.conf1, out.pts2, out.conf2, batch.pts1, batch.pts2, batch.valid1, batch.valid2,
                     config.loss)


@torch.no_grad()
def heldout_losses(model: nn.Module, eval_mix, config: TrainConfig, device: torch.device) -> dict[str, float]:
    """Mean loss and regression error of `model` over the fixed held-out batches of `eval_mix` (the config's
    [[data.eval]] sources built by `build_mix`): what the trainer logs as its eval rows."""
    data = config.data
    pairs = SeededPairs(eval_mix)
    was_training = model.training
    model.eval()
    totals, count = {"loss": 0.0, "regr": 0.0}, 0
    for items in eval_batches(eval_mix, data.batch_size, data.eval_batches, config.run.seed):
        raw = collate_raw(pairs.__getitems__(items))
        batch = make_pair_batch(raw, data.resolution_list()[0], None, device)
        loss, details = batch_loss(model, batch, config)
        totals["loss"] += loss.item() * len(batch)
        totals["regr"] += details["regr"].item() * len(batch)
        count += len(batch)
    model.train(was_training)
    return {k: v / count for k, v in totals.items()}


class Trainer:
    """One training run in `out_dir` (resumed from its newest checkpoint when `resume`).

    Attributes:
        model: the bare network (unwrapped from DDP).
        step: optimizer steps done so far.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path, resume: bool = True, verbose: bool = True):
        self.config = config
        self.out_dir = Path(out_dir)
        self.verbose = verbose
        if config.run.cpu_threads > 0:
            torch.set_num_threads(config.run.cpu_threads)
        self.rank, self.world_size, self.device = _distributed_setup()
        if not config.data.train:
            raise ValueError("data.train is empty; list at least one [[data.train]] dataset in the config")
        checkpoints = list_checkpoints(self.out_dir)
        if checkpoints and not resume:
            raise FileExistsError(f"{self.out_dir} holds checkpoints; pass resume=True or choose a new folder")
        self.model = initial_model(config, self.device)
        self.optimizer = make_optimizer(self.model, config)
        self.step = 0
        self.rewarm_from: int | None = None  # the step where moments were rebuilt from zero, if they were
        if checkpoints:
            manifest = load_checkpoint(checkpoints[-1], self.model, self.optimizer)
            self.step = manifest["step"]
            if manifest["optimizer_dtype"] == "none":
                self.rewarm_from = self.step
        if config.run.compile_blocks:
            self.model.compile_blocks()
        self.train_mix = build_mix(config.data.train)
        self.eval_mix = build_mix(config.data.eval) if config.data.eval else None
        self.log = None
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / "train_config.json", json.dumps(config.to_dict(), indent=1))
            self.log = MetricsLog(self.out_dir, resume_step=self.step)
        self._barrier()

    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def train_batches(self) -> StepBatches:
        """The augmented batches of the remaining steps, on this rank's device."""
        data = self.config.data
        sampler = StepBatchSampler(self.train_mix, data.batch_size, self.config.run.seed, self.step,
                                   self.config.optim.steps, self.config.optim.accumulation, self.rank,
                                   self.world_size)
        return StepBatches(self.train_mix, data.train, sampler, data.resolution_list(), data.augment,
                           data.num_workers, self.device, data.prefetch, data.render_steps)

    def evaluate(self) -> dict[str, float]:
        """Mean loss and regression error over the fixed held-out batches (the bare model, this rank)."""
        if self.eval_mix is None:
            return {}
        return heldout_losses(self.model, self.eval_mix, self.config, self.device)

    def save(self) -> None:
        """Checkpoint the current step (rank 0) and prune old checkpoints."""
        if self.rank == 0:
            run = self.config.run
            folder = self.out_dir / "checkpoints" / checkpoint_name(self.step)
            meta = {"model_config": self.model.config.to_dict(), "train_config": self.config.to_dict()}
            save_checkpoint(folder, self.model, self.optimizer, self.step, meta, run.checkpoint_weights,
                            run.checkpoint_optimizer, run.shard_mib)
            prune_checkpoints(self.out_dir, run.keep_checkpoints)
        self._barrier()

    def fit(self) -> Path:
        """Train to `optim.steps`, then write the final model folder; returns it (`out_dir/model`)."""
        config, optim = self.config, self.config.optim
        network = self.model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            network = DistributedDataParallel(self.model, device_ids=device_ids)
        params = [p for p in self.model.parameters() if p.requires_grad]
        batches = iter(self.train_batches())
        running = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, regr, micro-batches
        pairs_done, tick, start = 0, time.perf_counter(), time.perf_counter()
        data_wait = 0.0  # seconds spent waiting for batches since the last log row
        progress = tqdm(total=optim.steps, initial=self.step, desc="train", unit="step",
                        disable=not self.verbose or self.rank != 0)
        while self.step < optim.steps:
            lr = learning_rate(self.step, optim.steps, optim.lr, optim.min_lr, optim.warmup_steps)
            if self.rewarm_from is not None and optim.rewarm_steps > 0:
                lr *= min(1.0, (self.step - self.rewarm_from + 1) / optim.rewarm_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            for micro in range(optim.accumulation):
                wait = time.perf_counter()
                batch = next(batches)
                data_wait += time.perf_counter() - wait
                last = micro == optim.accumulation - 1
                sync = contextlib.nullcontext() if last or self.world_size == 1 else network.no_sync()
                with sync:
                    loss, details = batch_loss(network, batch, config)
                    (loss / optim.accumulation).backward()
                running += torch.stack([loss.detach().double(), details["regr"].double(), running.new_ones(())])
                pairs_done += len(batch) * self.world_size
            clip = optim.grad_clip if optim.grad_clip > 0 else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip).item()
            if math.isfinite(grad_norm):
                self.optimizer.step()
            else:
                warnings.warn(f"step {self.step}: gradient norm is {grad_norm}; update skipped", stacklevel=1)
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            progress.update(1)
            if self.step % config.run.log_every == 0 or self.step == optim.steps:
                if self.world_size > 1:
                    dist.all_reduce(running)
                loss_mean, regr_mean = (running[:2] / running[2]).tolist()
                now = time.perf_counter()
                if self.log is not None:
                    self.log.write(self.step, "train", {
                        "loss": loss_mean, "regr": regr_mean, "lr": lr, "grad_norm": grad_norm,
                        "pairs_per_s": pairs_done / (now - tick), "data_share": data_wait / (now - tick),
                        "elapsed_s": now - start,
                    })
                progress.set_postfix(loss=f"{loss_mean:.4f}")
                running.zero_()
                pairs_done, tick, data_wait = 0, now, 0.0
            if self.step % config.run.eval_every == 0 or self.step == optim.steps:
                if self.rank == 0 and self.eval_mix is not None:
                    self.log.write(self.step, "eval", self.evaluate())
                self._barrier()
            if self.step % config.run.checkpoint_every == 0 or self.step == optim.steps:
                self.save()
        progress.close()
        final = self.out_dir / "model"
        if self.rank == 0:
            save_model(self.model, final)
            self.log.close()
        self._barrier()
        return final


def train_from_config(config_path: str | Path, out_dir: str | Path, resume: bool = True, verbose: bool = True,
                      init_from: str | None = None, steps: int | None = None) -> Path:
    """Train as `config_path` (TOML) says, into `out_dir`; returns the final model folder.

    `out_dir` receives metrics.csv, train_config.json, checkpoints/step-XXXXXXXX/ and model/ (the
    format `pointmap.load_model` reads). With `resume`, a run continues from its newest checkpoint.
    `init_from` overrides the config's starting weights (model.init = "weights", model.weights =
    init_from): a model folder, "bundled", or a checkpoint folder of an earlier run. `steps` overrides
    optim.steps (the schedule's length), e.g. to fit a run into a time budget.
    """
    config = load_config(config_path)
    if steps is not None:
        config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, steps=steps))
    if init_from is not None:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, init="weights",
                                                                       weights=str(init_from)))
    return Trainer(config, out_dir, resume=resume, verbose=verbose).fit()


def main() -> None:
    """`python -m pointmap.train.trainer CONFIG OUT` (what torchrun launches on every process)."""
    parser = argparse.ArgumentParser(description="Train a DUSt3R network from a TOML config.")
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--init-from", default=None,
                        help="start from these weights instead of the config's: a model folder, 'bundled', or a "
                             "checkpoint folder of another run (e.g. runs/chunk1/checkpoints/step-00006000)")
    parser.add_argument("--steps", type=int, default=None, help="override optim.steps (the schedule's length)")
    args = parser.parse_args()
    train_from_config(args.config, args.out, resume=not args.no_resume, verbose=not args.quiet,
                      init_from=args.init_from, steps=args.steps)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
