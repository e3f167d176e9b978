"""Held-out synthetic multi-view pose sequences: N cameras around a furnished room (`room_capture`), or all the
way round objects on a table or the ground (`object_capture`, as object-centric photo sets are taken).

Scene k uses the val-split seed `scene_seed("val", k, seed)` (odd, never trained on). The renders are written
as PNG files into a folder, so every method reads the same files as on a public benchmark, each with its true
depth map beside it (`sequences.true_depth_path`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
from tqdm import tqdm

from pointmap.data.synthetic.capture import object_capture, room_capture
from pointmap.data.synthetic.dataset import scene_seed
from pointmap.eval.methods import sample_to_rgb8
from pointmap.eval.sequences import true_depth_path


@dataclass(frozen=True)
class SyntheticRoomsConfig:
    """What `held_out_rooms` renders."""

    scene: str = "room"
    """"room" (cameras around a furnished room) or "objects" (cameras around objects, looking in; every second
    scene's objects textureless, its sequence category "objects-plain")."""
    rooms: int = 8
    """Number of scenes (sequences)."""
    views: int = 10
    """Cameras per room (the paper's 10 frames per sequence)."""
    size: tuple[int, int] = (384, 512)
    """(H, W) of the renders."""
    seed: int = 0
    """Base seed of the val split."""
    device: str = "cpu"
    """Where the rooms are ray-cast."""
    object_distance_m: float = 2.3
    """"objects" only: how far the cameras stand from the objects, metres (+- 13 %; see object_capture)."""


def held_out_rooms(
    folder: str | Path, config: SyntheticRoomsConfig | None = None, verbose: bool = True
) -> list[tuple[str, str, list[str], np.ndarray]]:
    """Render the scenes into `folder` and return (name, scene kind, N image paths, (N, 4, 4) cam2world) each."""
    config = config or SyntheticRoomsConfig()
    if config.scene not in ("room", "objects"):
        raise ValueError(f"scene={config.scene!r}; pick 'room' or 'objects'")
    if config.rooms < 1 or config.views < 3:
        raise ValueError(f"rooms={config.rooms}, views={config.views}: pass 1 or more rooms of 3 or more views")
    sequences = []
    progress = tqdm(range(config.rooms), desc=f"rendering held-out {config.scene} scenes", unit="scene",
                    disable=not verbose)
    for index in progress:
        seed = scene_seed("val", index, config.seed)
        if config.scene == "room":
            category = "room"
            views = room_capture(seed, config.views, *config.size, device=config.device)
        else:
            textureless = index % 2 == 1
            category = "objects-plain" if textureless else "objects"
            views = object_capture(seed, config.views, *config.size, device=config.device, textureless=textureless,
                                   distance=config.object_distance_m)
        room_dir = Path(folder) / f"{category}_seed{seed}"
        room_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, view in enumerate(views):
            path = room_dir / f"{k:03d}.png"
            PIL.Image.fromarray(sample_to_rgb8(view)).save(path)
            np.save(true_depth_path(path), view.depth.float().cpu().numpy())  # (H, W), 0 where unknown
            paths.append(str(path))
        poses = np.stack([view.cam2world.double().cpu().numpy() for view in views])
        sequences.append((f"{category}_seed{seed}", category, paths, poses))
    return sequences
