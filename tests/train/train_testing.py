"""Helpers of the training tests: views of a textured plane with exact depth, a tiny dataset and config."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from pointmap.data.augment import AugmentConfig
from pointmap.data.formats.generic import write_scene, write_splits
from pointmap.data.mix import DatasetSpec
from pointmap.data.sample import ViewSample
from pointmap.train.config import DataSection, ModelSection, OptimSection, RunSection, TrainConfig

TINY_MODEL = dict(image_size=224, patch_size=8, enc_embed_dim=32, enc_depth=1, enc_num_heads=2,
                  dec_embed_dim=32, dec_depth=1, dec_num_heads=2, head_type="linear")
NO_AUGMENT = AugmentConfig(max_zoom=0, brightness=0, contrast=0, saturation=0, hue=0, noise_prob=0, blur_prob=0,
                           jpeg_prob=0, swap_prob=0)


def plane_view(cam_position: tuple[float, float, float], normal: tuple[float, float, float], offset: float,
               size: tuple[int, int] = (32, 32), focal: float = 30.0) -> ViewSample:
    """A camera at `cam_position` (axes aligned with the world's) seeing the plane normal . X = offset.

    Depth is exact (ray-plane intersection); the image is a smooth pattern of the world point, so
    every view of the plane agrees on its colours.
    """
    height, width = size
    K = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=torch.float32)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    rays = torch.stack([(xs - K[0, 2]) / focal, (ys - K[1, 2]) / focal, torch.ones_like(xs)], dim=-1)
    origin, n = torch.tensor(cam_position), torch.tensor(normal)
    depth = (offset - (n * origin).sum()) / (rays * n).sum(-1)  # z-depth, since rays have z = 1
    world = origin + depth[..., None] * rays
    image = torch.stack([torch.sin(3 * world[..., 0]), torch.cos(2 * world[..., 1]),
                         torch.sin(world[..., 0] + 2 * world[..., 1])])
    cam2world = torch.eye(4)
    cam2world[:3, 3] = origin
    return ViewSample(image=image * 0.9, depth=depth, valid=depth > 0, intrinsics=K, cam2world=cam2world,
                      source=f"plane{normal}@{cam_position}")


def write_plane_dataset(root: Path, scenes: int = 2, frames: int = 3, size: tuple[int, int] = (32, 32)) -> Path:
    """A generic-format dataset: per scene, `frames` cameras on a line before a tilted plane."""
    for s in range(scenes):
        tilt = 0.2 + 0.3 * s
        normal = (math.sin(tilt), 0.0, math.cos(tilt))
        views = [(f"f{i}", plane_view((0.3 * i, 0.1 * s, 0.0), normal, 2.0 + s, size)) for i in range(frames)]
        pairs = [(f"f{i}", f"f{j}", 0.8) for i in range(frames) for j in range(frames) if i != j]
        write_scene(root, f"scene{s}", views, pairs, image_format="png")
    write_splits(root, {"train": [f"scene{s}" for s in range(scenes)]})
    return root


def tiny_config(root: Path, steps: int = 6, **run) -> TrainConfig:
    """A tiny linear-head model on the plane dataset at 32x32, no augmentation."""
    spec = DatasetSpec(kind="generic", root=str(root), split="train")
    return TrainConfig(
        model=ModelSection(config=TINY_MODEL),
        data=DataSection(train=(spec,), eval=(spec,), resolutions=((32, 32),), batch_size=2, eval_batches=1,
                         augment=NO_AUGMENT),
        optim=OptimSection(steps=steps, lr=2e-3, min_lr=1e-4, warmup_steps=2),
        run=RunSection(**{"log_every": 1, "eval_every": 3, "checkpoint_every": 3, "keep_checkpoints": 5, **run}),
    )
