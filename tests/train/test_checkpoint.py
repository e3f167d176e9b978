"""Checkpoints: bounded shards, exact round trips, reduced precision, pruning."""

from __future__ import annotations

import torch
from torch import nn

from pointmap.train.checkpoint import (
    checkpoint_bytes,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    read_manifest,
    save_checkpoint,
)


def _trained(seed: int = 0) -> tuple[nn.Module, torch.optim.AdamW]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        model(torch.randn(4, 64)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def test_exact_round_trip_in_small_shards(tmp_path):
    model, optimizer = _trained()
    folder = save_checkpoint(tmp_path / "checkpoints" / "step-00000003", model, optimizer, 3, {"note": "x"},
                             shard_mib=8 / 1024)  # 8 KiB shards: the 32 KiB weight matrix splits in pieces
    manifest = read_manifest(folder)
    assert manifest["step"] == 3 and manifest["note"] == "x"
    assert len(manifest["tensors"]["model/0.weight"]["pieces"]) == 4
    shards = sorted(folder.glob("shard-*.safetensors"))
    assert len(shards) == len(manifest["shards"]) > 8
    assert max(p.stat().st_size for p in shards) <= 8 * 1024 + 1024  # + the safetensors header

    fresh, fresh_optimizer = _trained(seed=1)
    load_checkpoint(folder, fresh, fresh_optimizer)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(optimizer.state[p][key], fresh_optimizer.state[q][key]), key
    # One more identical step from each stays identical.
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(5))
    for m, o in ((model, optimizer), (fresh, fresh_optimizer)):
        m(x).square().mean().backward()
        o.step()
    assert torch.equal(model[0].weight, fresh[0].weight)


def test_reduced_precision_halves_the_size_and_none_drops_the_moments(tmp_path):
    model, optimizer = _trained()
    full = save_checkpoint(tmp_path / "full", model, optimizer, 3, {})
    small = save_checkpoint(tmp_path / "small", model, optimizer, 3, {}, weights_dtype="float16",
                            optimizer_dtype="bfloat16")
    bare = save_checkpoint(tmp_path / "bare", model, optimizer, 3, {}, optimizer_dtype="none")
    assert 0.45 < checkpoint_bytes(small) / checkpoint_bytes(full) < 0.55
    assert 0.3 < checkpoint_bytes(bare) / checkpoint_bytes(full) < 0.36
    restored, restored_optimizer = _trained(seed=2)
    load_checkpoint(small, restored, restored_optimizer)
    torch.testing.assert_close(restored[0].weight, model[0].weight, atol=1e-3, rtol=1e-3)
    fresh_optimizer = torch.optim.AdamW(restored.parameters())
    load_checkpoint(bare, restored, fresh_optimizer)
    assert not fresh_optimizer.state


def test_list_and_prune(tmp_path):
    model, optimizer = _trained()
    for step in (5, 10, 15):
        save_checkpoint(tmp_path / "checkpoints" / f"step-{step:08d}", model, optimizer, step, {})
    (tmp_path / "checkpoints" / ".step-00000020.tmp").mkdir()  # a write cut short by a kill
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000005", "step-00000010", "step-00000015"]
    prune_checkpoints(tmp_path, keep=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000015"]
