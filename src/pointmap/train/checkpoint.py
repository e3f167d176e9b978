"""Training checkpoints: weights and AdamW state in safetensors shards of bounded size, written atomically.

A checkpoint is a folder `step-00001234/` holding `manifest.json` (step, configs, where each tensor
lives) and `shard-000.safetensors`, ... each at most `shard_mib` MiB, so that long runs move between
machines in small files. Tensors larger than a shard are split along their flattened elements.
The folder is written under a temporary name and renamed, so a kill never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pointmap.io_utils import atomic_dir
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R

MANIFEST = "manifest.json"
FOLDER_PATTERN = re.compile(r"^step-(\d{8})$")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after `step` optimizer steps."""
    return f"step-{step:08d}"


def _state_tensors(model: nn.Module, optimizer: torch.optim.Optimizer, weights_dtype: str,
                   optimizer_dtype: str) -> dict[str, torch.Tensor]:
    """Flat name -> tensor dict of the model weights and (optionally) the AdamW moments."""
    tensors = {f"model/{name}": t.detach().to(DTYPES[weights_dtype]) for name, t in model.state_dict().items()}
    if optimizer_dtype == "none":
        return tensors
    for name, param in model.named_parameters():
        state = optimizer.state.get(param)
        if not state:
            continue
        tensors[f"optim/{name}/step"] = torch.as_tensor(state["step"], dtype=torch.float32).reshape(1)
        for key in ("exp_avg", "exp_avg_sq"):
            tensors[f"optim/{name}/{key}"] = state[key].detach().to(DTYPES[optimizer_dtype])
    return tensors


def _shard(tensors: dict[str, torch.Tensor], limit_bytes: int) -> tuple[list[dict[str, torch.Tensor]], dict]:
    """Pack tensors into shards of at most `limit_bytes`; returns the shards and the index of pieces."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    index: dict[str, Any] = {}
    for name, tensor in tensors.items():
        flat = tensor.contiguous().cpu().reshape(-1)
        per_piece = max(1, limit_bytes // flat.element_size())
        pieces = []
        for start in range(0, max(1, flat.numel()), per_piece):
            piece = flat[start : start + per_piece].clone()
            nbytes = piece.numel() * piece.element_size()
            if sizes[-1] + nbytes > limit_bytes and shards[-1]:
                shards.append({})
                sizes.append(0)
            key = f"{name}#{len(pieces)}"
            shards[-1][key] = piece
            sizes[-1] += nbytes
            pieces.append([len(shards) - 1, key])
        index[name] = {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch."),
                       "pieces": pieces}
    return shards, index


def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    meta: dict[str, Any], weights_dtype: str = "float32", optimizer_dtype: str = "float32",
                    shard_mib: float = 16.0) -> Path:
    """Write the checkpoint after `step` steps to `folder` (replaced atomically if it exists).

    Args:
        model: the bare model (not a DDP wrapper).
        meta: JSON-ready extras stored in the manifest (model config, train config).
        weights_dtype, optimizer_dtype: storage precision; "float32" for both resumes bit-exactly.
    Returns:
        The folder.
    """
    limit = int(shard_mib * 2**20)
    shards, index = _shard(_state_tensors(model, optimizer, weights_dtype, optimizer_dtype), limit)
    manifest = {"step": step, "tensors": index, "shards": [f"shard-{i:03d}.safetensors" for i in range(len(shards))],
                "weights_dtype": weights_dtype, "optimizer_dtype": optimizer_dtype, **meta}
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(folder) as tmp:
        for name, shard in zip(manifest["shards"], shards, strict=True):
            save_file(shard, str(tmp / name))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a checkpoint folder."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {folder} is not a complete checkpoint")
    return json.loads(path.read_text())


def load_tensors(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All tensors of a checkpoint, reassembled from their pieces, and its manifest."""
    manifest = read_manifest(folder)
    shards = [load_file(str(Path(folder) / name)) for name in manifest["shards"]]
    tensors = {}
    for name, entry in manifest["tensors"].items():
        flat = torch.cat([shards[shard][key] for shard, key in entry["pieces"]])
        tensors[name] = flat[: math.prod(entry["shape"])].reshape(entry["shape"])
    return tensors, manifest


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore weights (and AdamW state if stored) in place; returns the manifest (its "step" included)."""
    tensors, manifest = load_tensors(folder)
    state = {name.removeprefix("model/"): t for name, t in tensors.items() if name.startswith("model/")}
    reference = model.state_dict()
    missing = sorted(set(reference) - set(state))
    if missing:
        raise ValueError(f"{folder}: checkpoint lacks weights {missing[:5]}; it belongs to another model config")
    model.load_state_dict({name: state[name].to(reference[name].dtype) for name in reference})
    if optimizer is None:
        return manifest
    for name, param in model.named_parameters():
        if f"optim/{name}/step" not in tensors:
            continue
        optimizer.state[param] = {
            "step": tensors[f"optim/{name}/step"][0].clone(),
            "exp_avg": tensors[f"optim/{name}/exp_avg"].to(param.device, param.dtype),
            "exp_avg_sq": tensors[f"optim/{name}/exp_avg_sq"].to(param.device, param.dtype),
        }
    return manifest


def model_from_checkpoint(folder: Path, device: str | torch.device = "cpu") -> DUSt3R:
    """The network of a training checkpoint (in eval mode), e.g. to evaluate a run while it trains."""
    manifest = read_manifest(folder)
    if "model_config" not in manifest:
        raise ValueError(f"{folder}: the manifest has no model_config; only the trainer's checkpoints carry one")
    model = DUSt3R(ModelConfig.from_dict(manifest["model_config"]))
    load_checkpoint(folder, model)
    return model.to(device).eval()


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders under `run_dir/checkpoints`, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if FOLDER_PATTERN.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: p.name)


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the `keep` newest checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)


def checkpoint_bytes(folder: Path) -> int:
    """Total size of a checkpoint's files."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())
