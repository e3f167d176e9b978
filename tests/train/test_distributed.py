"""Two CPU processes under DDP (gloo) train in lockstep: their weights end identical."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from train_testing import tiny_config, write_plane_dataset

from pointmap.train.logs import read_metrics
from pointmap.train.trainer import Trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, dataset, out_dir) -> None:
    # What torchrun sets for every process.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    trainer = Trainer(tiny_config(dataset, steps=4, cpu_threads=1), out_dir / "run", verbose=False)
    trainer.fit()
    torch.save(trainer.model.state_dict(), out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow  # about 50 s: two processes each import torch and build the data
def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    dataset = write_plane_dataset(tmp_path / "planes")
    mp.spawn(_worker, args=(2, _free_port(), dataset, tmp_path), nprocs=2, join=True)
    weights0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    weights1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    torch.manual_seed(0)
    initial = Trainer(tiny_config(dataset, steps=4), tmp_path / "fresh", verbose=False).model.state_dict()
    changed = 0
    for name, tensor in weights0.items():
        assert torch.equal(tensor, weights1[name]), name
        changed += not torch.equal(tensor, initial[name])
    assert changed > len(weights0) // 2  # the ranks trained, and in step
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in rows if r["split"] == "train"] == [1, 2, 3, 4]
