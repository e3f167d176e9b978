"""Held-out synthetic rooms as multi-view pose sequences: N cameras around a furnished room (`room_capture`).

Room k uses the val-split seed `scene_seed("val", k, seed)` (odd, never trained on). The renders are written
as PNG files into a folder, so every method reads the same files as on a public benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
from tqdm import tqdm

from pointmap.data.synthetic.capture import room_capture
from pointmap.data.synthetic.dataset import scene_seed
from pointmap.eval.methods import sample_to_rgb8


@dataclass(frozen=True)
class SyntheticRoomsConfig:
    """What `held_out_rooms` renders."""

    rooms: int = 8
    """Number of rooms (sequences)."""
    views: int = 10
    """Cameras per room (the paper's 10 frames per sequence)."""
    size: tuple[int, int] = (384, 512)
    """(H, W) of the renders."""
    seed: int = 0
    """Base seed of the val split."""
    device: str = "cpu"
    """Where the rooms are ray-cast."""


def held_out_rooms(
    folder: str | Path, config: SyntheticRoomsConfig | None = None, verbose: bool = True
) -> list[tuple[str, str, list[str], np.ndarray]]:
    """Render the rooms into `folder` and return (room, "room", N image paths, (N, 4, 4) cam2world) each."""
    config = config or SyntheticRoomsConfig()
    if config.rooms < 1 or config.views < 3:
        raise ValueError(f"rooms={config.rooms}, views={config.views}: pass 1 or more rooms of 3 or more views")
    sequences = []
    for index in tqdm(range(config.rooms), desc="rendering held-out rooms", unit="room", disable=not verbose):
        seed = scene_seed("val", index, config.seed)
        views = room_capture(seed, config.views, *config.size, device=config.device)
        room_dir = Path(folder) / f"room_seed{seed}"
        room_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, view in enumerate(views):
            path = room_dir / f"{k:03d}.png"
            PIL.Image.fromarray(sample_to_rgb8(view)).save(path)
            paths.append(str(path))
        poses = np.stack([view.cam2world.double().cpu().numpy() for view in views])
        sequences.append((f"room_seed{seed}", "room", paths, poses))
    return sequences
