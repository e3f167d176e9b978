"""Helpers of the network tests: tiny configs, random weights and images, golden weight rules."""

from __future__ import annotations

import dataclasses
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

TINY_DPT = dataclasses.replace(TINY, image_size=512, head_type="dpt")


def rules_state_dict(weights_json: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """The official constructor string and the state dict rebuilt from a golden weights.json."""
    spec = json.loads(weights_json.read_text())
    state_dict = {}
    for param in spec["params"]:
        noise = np.random.default_rng(param["rng"]).standard_normal(param["shape"])
        state_dict[param["name"]] = torch.from_numpy((param["mean"] + param["std"] * noise).astype(np.float32))
    return spec["model"], state_dict


def random_model(config: ModelConfig, seed: int = 0) -> DUSt3R:
    """A model of `config` with reproducible random weights, scaled by fan-in so activations stay O(1)."""
    generator = torch.Generator().manual_seed(seed)
    # built on the meta device: the default initialisation would be overwritten anyway
    model = DUSt3R(config, device="meta").to_empty(device="cpu")
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if param.ndim >= 2:
                param.copy_(noise * (param[0].numel() ** -0.5))
            else:
                param.copy_(noise * 0.1 + (1.0 if "norm" in name and name.endswith(".weight") else 0.0))
    return model.eval()


def random_images(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(batch, 3, height, width) uniform in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
