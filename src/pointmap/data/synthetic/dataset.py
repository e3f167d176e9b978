"""Pairs of views of procedural scenes with exact depth, in the training sample format."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from ..sample import ViewSample
from .cameras import (
    clear_of_obstacles,
    intrinsics_from_fov,
    look_at,
    overlap,
    sample_first_camera,
    sample_fov,
    sample_roll,
    sample_second_cameras,
)
from .capture import views_to_samples
from .render import render_depth, render_views
from .scenes import SCENE_KINDS, SyntheticScene, make_scene, stack_scenes
from .textures import load_photo_bank


@dataclass(frozen=True)
class SyntheticConfig:
    """What the synthetic pair dataset draws."""

    kinds: tuple[str, ...] = SCENE_KINDS
    """Scene kinds to mix (see make_scene)."""
    kind_weights: tuple[float, ...] = (0.45, 0.3, 0.25)
    """Relative frequency of each kind."""
    train_length: int = 100_000
    """Number of training items (an epoch)."""
    val_length: int = 1_000
    """Number of validation items."""
    pairs_per_scene: int = 8
    """Consecutive items that share one scene (different cameras)."""
    min_overlap: float = 0.3
    """Smallest accepted fraction of view 1 visible in view 2."""
    max_overlap: float = 0.95
    """Largest accepted overlap (near-duplicate views teach little)."""
    candidates: int = 8
    """Second-view candidates probed per pair; the first one in the overlap range is kept."""
    probe_size: tuple[int, int] = (24, 32)
    """(H, W) of the depth-only renders that measure candidate overlap."""
    hfov_deg: tuple[float, float] = (45.0, 80.0)
    """Range of horizontal fields of view."""
    shadows: bool = True
    """Cast shadows of each scene's main light."""
    supersample: int = 1
    """Anti-aliasing rays per pixel side (colour only)."""
    photo_folder: str | None = None
    """A folder of photos used as some surfaces' textures; None for procedural textures only."""
    seed: int = 0
    """Shifts every scene and camera: another seed, another dataset."""


def scene_seed(split: str, scene_index: int, base_seed: int = 0) -> int:
    """Seed of a scene: even for "train", odd for "val", so the two splits never share a scene."""
    if split not in ("train", "val"):
        raise ValueError(f"split {split!r} unknown; pass 'train' or 'val'")
    return 2 * (scene_index + base_seed * 100_000_000) + (split == "val")


class SyntheticPairDataset(torch.utils.data.Dataset):
    """Image pairs of procedural scenes with enough overlap; item i is the same for the same config.

    ds[i] -> (view1, view2, overlap): two ViewSamples with images (3, H, W) in [-1, 1], exact depth, valid
    masks (False on sky), intrinsics and cam2world; overlap is the fraction of view 1's valid pixels that
    view 2 sees. `render_batch(indices)` renders many items in one batched pass (what a GPU wants).
    """

    def __init__(self, config: SyntheticConfig, split: str = "train", size: tuple[int, int] = (224, 224), device=None):
        if len(config.kinds) != len(config.kind_weights):
            raise ValueError("SyntheticConfig: kinds and kind_weights differ in length; give one weight per kind")
        scene_seed(split, 0)  # validates split
        self.config, self.split, self.size = config, split, tuple(size)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._photos: Tensor | None = None
        self._scene_cache: dict[int, SyntheticScene] = {}

    def __len__(self) -> int:
        return self.config.train_length if self.split == "train" else self.config.val_length

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        return self.render_batch([index])[0]

    def scene_of(self, index: int) -> tuple[str, int]:
        """(kind, seed) of the scene item `index` is drawn from."""
        seed = scene_seed(self.split, index // self.config.pairs_per_scene, self.config.seed)
        kind = random.Random(seed).choices(self.config.kinds, self.config.kind_weights)[0]
        return kind, seed

    def _scene(self, index: int) -> SyntheticScene:
        kind, seed = self.scene_of(index)
        if seed not in self._scene_cache:
            if self.config.photo_folder is not None and self._photos is None:
                self._photos = load_photo_bank(self.config.photo_folder, device=self.device)
            if len(self._scene_cache) > 64:
                self._scene_cache.clear()
            self._scene_cache[seed] = make_scene(kind, seed, device=self.device, photos=self._photos)
        return self._scene_cache[seed]

    def _cameras(self, index: int, scene: SyntheticScene) -> tuple[Tensor, Tensor]:
        """(1 + candidates) eyes and targets for item `index`: the first view, then second-view candidates."""
        _, seed = self.scene_of(index)
        generator = torch.Generator().manual_seed(seed * 1_000 + index % self.config.pairs_per_scene)
        layout = scene.layouts[0]
        eye, target = sample_first_camera(layout, generator)
        eyes, targets = sample_second_cameras(layout, eye, target, self.config.candidates, generator)
        fov = sample_fov(1 + self.config.candidates, generator, *self.config.hfov_deg)
        roll = sample_roll(1 + self.config.candidates, generator)
        cam2world = look_at(torch.cat([eye[None], eyes]), torch.cat([target[None], targets]), roll)
        return cam2world, fov

    def _choose(self, overlaps: Tensor, usable: Tensor) -> Tensor:
        """(N,) index of the kept candidate per item from (N, C) probe overlaps and usability."""
        overlaps = torch.where(usable, overlaps, -1.0)
        in_range = (overlaps >= self.config.min_overlap) & (overlaps <= self.config.max_overlap)
        first = torch.where(in_range.any(-1), in_range.float().argmax(-1), -1)
        below = torch.where(overlaps <= self.config.max_overlap, overlaps, -1.0)
        return torch.where(first >= 0, first, below.argmax(-1))

    def render_batch(self, indices: list[int]) -> list[tuple[ViewSample, ViewSample, float]]:
        """Items `indices`, rendered together: the same values as one by one."""
        height, width = self.size
        scenes = [self._scene(i) for i in indices]
        batch = stack_scenes(scenes) if len(scenes) > 1 else scenes[0]
        cams = [self._cameras(i, s) for i, s in zip(indices, scenes, strict=True)]
        cam2world = torch.stack([c for c, _ in cams])  # (N, 1 + C, 4, 4)
        fov = torch.stack([f for _, f in cams])  # (N, 1 + C)
        probe_h, probe_w = self.config.probe_size
        probe_k = intrinsics_from_fov(fov.reshape(-1), probe_h, probe_w).reshape(*fov.shape, 3, 3)
        probe = render_depth(batch, probe_k, cam2world, probe_h, probe_w)  # (N, 1 + C, h, w)
        count = self.config.candidates
        first = probe[:, :1].expand(-1, count, -1, -1).reshape(-1, probe_h, probe_w)
        first_k = probe_k[:, :1].expand(-1, count, -1, -1).reshape(-1, 3, 3)
        first_pose = cam2world[:, :1].expand(-1, count, -1, -1).reshape(-1, 4, 4)
        forward = overlap(
            first,
            first_k,
            first_pose,
            probe[:, 1:].reshape(first.shape),
            probe_k[:, 1:].reshape(-1, 3, 3),
            cam2world[:, 1:].reshape(-1, 4, 4),
        )
        backward = overlap(
            probe[:, 1:].reshape(first.shape),
            probe_k[:, 1:].reshape(-1, 3, 3),
            cam2world[:, 1:].reshape(-1, 4, 4),
            first,
            first_k,
            first_pose,
        )
        # Unusable candidates stand in furniture or trees, or nearly touch a surface.
        nearest = torch.where(probe[:, 1:] > 0, probe[:, 1:], torch.inf).amin(dim=(-2, -1))  # (N, C)
        clear = torch.stack(
            [clear_of_obstacles(s.layouts[0], c[1:, :3, 3]) for s, c in zip(scenes, cam2world, strict=True)]
        )
        usable = clear.to(nearest.device) & (nearest > 0.3)
        chosen = 1 + self._choose(torch.minimum(forward, backward).reshape(-1, count), usable)  # (N,)

        rows = torch.arange(len(indices))
        pair_pose = torch.stack([cam2world[:, 0], cam2world[rows, chosen]], 1)  # (N, 2, 4, 4)
        pair_fov = torch.stack([fov[:, 0], fov[rows, chosen]], 1)
        pair_k = intrinsics_from_fov(pair_fov.reshape(-1), height, width).reshape(-1, 2, 3, 3)
        rgb, depth = render_views(batch, pair_k, pair_pose, height, width, self.config.shadows, self.config.supersample)
        pair_k, pair_pose = pair_k.to(depth.device), pair_pose.to(depth.device)
        full_overlap = overlap(depth[:, 0], pair_k[:, 0], pair_pose[:, 0], depth[:, 1], pair_k[:, 1], pair_pose[:, 1])
        items = []
        for n, index in enumerate(indices):
            kind, seed = self.scene_of(index)
            name = f"synthetic/{kind}/seed={seed}/pair={index % self.config.pairs_per_scene}"
            view1, view2 = views_to_samples(
                rgb[n], depth[n], pair_k[n], pair_pose[n], [f"{name}/view=1", f"{name}/view=2"]
            )
            items.append((view1, view2, float(full_overlap[n])))
        return items
