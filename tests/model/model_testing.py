"""Helpers of the network tests: tiny configs, random weights and images, golden weight rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R

TINY = ModelConfig(
    image_size=224,
    enc_embed_dim=32,
    enc_depth=2,
    enc_num_heads=2,
    dec_embed_dim=32,
    dec_depth=4,
    dec_num_heads=2,
    head_type="linear",
)


def rules_state_dict(weights_json: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """The official constructor string and the state dict rebuilt from a golden weights.json."""
    spec = json.loads(weights_json.read_text())
    state_dict = {}
    for param in spec["params"]:
        noise = np.random.default_rng(param["rng"]).standard_normal(param["shape"])
        state_dict[param["name"]] = torch.from_numpy((param["mean"] + param["std"] * noise).astype(np.float32))
    return spec["model"], state_dict


def random_model(config: ModelConfig, seed: int = 0) -> DUSt3R:
    """A model of `config` with reproducible random weights (std 0.2 keeps the outputs in a sane range)."""
    generator = torch.Generator().manual_seed(seed)
    model = DUSt3R(config)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return model.eval()


def random_images(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(batch, 3, height, width) uniform in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
