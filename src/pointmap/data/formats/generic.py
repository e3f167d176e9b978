"""pointmap's own dataset folder format (docs/dataset-format.md): reader and writer.

One folder per scene with `images/`, `depth/` (16-bit PNG + per-frame scale), optional `masks/`,
`cameras.json` (intrinsics, cam2world, depth scale per frame) and `pairs.csv` (frame pairs with their
overlap); an optional `splits.json` at the root names the scenes of each split.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pointmap.data.formats.files import read_mask, read_png16, read_rgb, write_png16, write_rgb
from pointmap.data.sample import ViewSample
from pointmap.io_utils import atomic_write_text

FORMAT_NAME = "pointmap-scene"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Frame:
    """One frame's entry in a scene's cameras.json."""

    name: str
    image: str  # path relative to the scene folder
    depth: str
    mask: str | None
    intrinsics: list[list[float]]  # (3, 3)
    cam2world: list[list[float]]  # (4, 4), OpenCV axes
    depth_scale: float  # scene units per PNG step


def _read_scene_frames(scene_dir: Path) -> dict[str, Frame]:
    path = scene_dir / "cameras.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a scene folder needs cameras.json (docs/dataset-format.md)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; "
            f"this reader takes {FORMAT_NAME!r} version {FORMAT_VERSION}"
        )
    return {f["name"]: Frame(**f) for f in meta["frames"]}


def _read_pairs(scene_dir: Path, frames: dict[str, Frame]) -> list[tuple[str, str, float]]:
    path = scene_dir / "pairs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a scene folder needs pairs.csv with frame1,frame2,overlap")
    pairs = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key in ("frame1", "frame2"):
                if row[key] not in frames:
                    raise ValueError(f"{path}: frame {row[key]!r} is not in cameras.json; fix the pair list")
            overlap = float(row["overlap"]) if row.get("overlap") not in (None, "") else math.nan
            pairs.append((row["frame1"], row["frame2"], overlap))
    return pairs


def _scene_names(root: Path, split: str | None) -> list[str]:
    if split is None:
        return sorted(p.name for p in root.iterdir() if (p / "cameras.json").is_file())
    splits_path = root / "splits.json"
    if not splits_path.is_file():
        raise FileNotFoundError(f"{splits_path}: missing, so split={split!r} is unknown; pass split=None or add it")
    splits = json.loads(splits_path.read_text())
    if split not in splits:
        raise ValueError(f"{splits_path}: no split {split!r}; it has {sorted(splits)}")
    return list(splits[split])


class GenericPairDataset:
    """Pairs of a dataset in the generic folder format.

    Args:
        root: the dataset folder.
        split: a key of `root/splits.json`, or None for every scene folder.
        min_overlap: drop pairs whose listed overlap is below this (unknown overlaps are kept).
    Items: `ds[i] -> (view1, view2, overlap)`, two ViewSamples at the stored resolution.
    """

    def __init__(self, root: str | Path, split: str | None = None, min_overlap: float = 0.0):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: dataset folder not found")
        self.frames: dict[str, dict[str, Frame]] = {}
        self.pairs: list[tuple[str, str, str, float]] = []  # (scene, frame1, frame2, overlap)
        for scene in _scene_names(self.root, split):
            frames = _read_scene_frames(self.root / scene)
            self.frames[scene] = frames
            for name1, name2, overlap in _read_pairs(self.root / scene, frames):
                if math.isnan(overlap) or overlap >= min_overlap:
                    self.pairs.append((scene, name1, name2, overlap))
        if not self.pairs:
            raise ValueError(f"{self.root}: no pairs (split={split!r}, min_overlap={min_overlap}); check pairs.csv")

    def __len__(self) -> int:
        return len(self.pairs)

    def view(self, scene: str, name: str) -> ViewSample:
        """Load one frame of a scene as a ViewSample."""
        frame = self.frames[scene][name]
        scene_dir = self.root / scene
        image = read_rgb(scene_dir / frame.image)
        depth = torch.from_numpy(read_png16(scene_dir / frame.depth).astype(np.float32) * frame.depth_scale)
        valid = depth > 0
        if frame.mask is not None:
            valid &= torch.from_numpy(read_mask(scene_dir / frame.mask) > 0)
        if depth.shape != image.shape[-2:]:
            raise ValueError(
                f"{scene_dir / frame.depth}: depth is {tuple(depth.shape)} but the image is "
                f"{tuple(image.shape[-2:])}; store both at one resolution"
            )
        return ViewSample(
            image=image,
            depth=depth * valid,
            valid=valid,
            intrinsics=torch.tensor(frame.intrinsics, dtype=torch.float32),
            cam2world=torch.tensor(frame.cam2world, dtype=torch.float32),
            source=str(scene_dir / frame.image),
        )

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        scene, name1, name2, overlap = self.pairs[index]
        return self.view(scene, name1), self.view(scene, name2), overlap


def write_scene(
    root: str | Path,
    scene: str,
    views: Sequence[tuple[str, ViewSample]],
    pairs: Sequence[tuple[str, str, float]],
    image_format: str = "jpg",
) -> Path:
    """Write one scene in the generic format; cameras.json goes last, so readers never see half a scene.

    Args:
        root: the dataset folder (created if missing).
        scene: the scene folder name.
        views: (frame name, ViewSample) per frame; depth is stored as a 16-bit PNG whose step is
            max(depth) / 65535 (relative precision 1.5e-5 of the frame's depth range), 0 where not valid.
        pairs: (frame1, frame2, overlap in [0, 1] or NaN if unknown).
        image_format: "jpg" (quality 95) or "png" (lossless).
    Returns:
        The scene folder.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format={image_format!r}; use 'jpg' or 'png'")
    names = [name for name, _ in views]
    if len(set(names)) != len(names):
        raise ValueError(f"scene {scene!r}: frame names repeat; give each view a unique name")
    for name1, name2, _ in pairs:
        if name1 not in names or name2 not in names:
            raise ValueError(f"scene {scene!r}: pair ({name1}, {name2}) names a frame not in views")
    scene_dir = Path(root) / scene
    for sub in ("images", "depth"):
        (scene_dir / sub).mkdir(parents=True, exist_ok=True)
    frames = []
    for name, view in views:
        depth = (view.depth * view.valid).float().cpu().numpy()
        scale = float(depth.max()) / 65535 if depth.max() > 0 else 1.0
        steps = np.round(depth / scale).clip(0, 65535).astype(np.uint16)
        # A valid pixel whose depth rounds to 0 would read back as unknown: keep it at the first step.
        steps[(view.valid.cpu().numpy()) & (steps == 0)] = 1
        write_rgb(scene_dir / "images" / f"{name}.{image_format}", view.image)
        write_png16(scene_dir / "depth" / f"{name}.png", steps)
        frames.append(
            {
                "name": name,
                "image": f"images/{name}.{image_format}",
                "depth": f"depth/{name}.png",
                "mask": None,
                "intrinsics": view.intrinsics.double().cpu().tolist(),
                "cam2world": view.cam2world.double().cpu().tolist(),
                "depth_scale": scale,
            }
        )
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["frame1", "frame2", "overlap"])
    writer.writerows([name1, name2, "" if math.isnan(overlap) else f"{overlap:.4f}"] for name1, name2, overlap in pairs)
    atomic_write_text(scene_dir / "pairs.csv", table.getvalue())
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "frames": frames}
    atomic_write_text(scene_dir / "cameras.json", json.dumps(meta, indent=1))
    return scene_dir


def write_splits(root: str | Path, splits: dict[str, list[str]]) -> None:
    """Write `root/splits.json`: split name -> scene folder names."""
    atomic_write_text(Path(root) / "splits.json", json.dumps(splits, indent=1))
