"""CO3Dv2 multi-view pose test sequences from the dataset's published layout (DUSt3R Tab. 2 protocol).

Layout (as downloaded from the CO3Dv2 release):

    ROOT/{category}/frame_annotations.jgz        gzip JSON list: sequence_name, frame_number, image.path
                                                  (relative to ROOT), viewpoint.R / .T (PyTorch3D)
    ROOT/{category}/sequence_annotations.jgz     gzip JSON list: sequence_name, viewpoint_quality_score
    ROOT/{category}/set_lists/set_lists_fewview_dev.json   {"train" | "val" | "test": [[sequence, frame, path]]}
    ROOT/{category}/{sequence}/images/frame{number:06d}.jpg

Protocol (PoseDiffusion's, which DUSt3R follows; facts from their evaluation code): the "test" sequences
of set_lists_fewview_dev.json with viewpoint_quality_score > 0.5 and at least 50 frames, frames with a
translation sum above 1e5 dropped, 10 random frames per sequence, every pair of them scored.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointmap.eval.sequences import choose_frames

PYTORCH3D_TO_OPENCV = np.diag([-1.0, -1.0, 1.0])
"""PyTorch3D cameras look along +z with x left and y up; OpenCV's x points right and y down."""


@dataclass(frozen=True)
class Co3dEvalConfig:
    """Which CO3Dv2 sequences and frames are evaluated."""

    frames: int = 10
    """Frames sampled per sequence."""
    seed: int = 0
    """Seed of the frame sampling."""
    set_list: str = "set_lists_fewview_dev.json"
    """Set-list file of each category."""
    split: str = "test"
    """Entry of the set list whose sequences are evaluated."""
    min_quality: float = 0.5
    """Sequences need a viewpoint_quality_score above this."""
    min_frames: int = 50
    """Sequences with fewer usable frames are skipped."""
    categories: tuple[str, ...] | None = None
    """Categories to evaluate; None for every folder holding a frame_annotations.jgz."""
    max_sequences: int | None = None
    """At most this many sequences per category (the first by name), None for all."""


def read_jgz(path: Path) -> list[dict]:
    """A gzip-compressed JSON list."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; point --data at the CO3Dv2 root (ROOT/category/{path.name})")
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return json.load(stream)


def viewpoint_to_cam2world(R, T) -> np.ndarray:
    """(4, 4) OpenCV cam2world from a CO3D viewpoint (PyTorch3D: x_cam = x_world @ R + T, row vectors)."""
    world2cam = np.eye(4)
    world2cam[:3, :3] = PYTORCH3D_TO_OPENCV @ np.asarray(R, dtype=np.float64).T
    world2cam[:3, 3] = PYTORCH3D_TO_OPENCV @ np.asarray(T, dtype=np.float64)
    return np.linalg.inv(world2cam)


def co3d_sequences(
    root: str | Path, config: Co3dEvalConfig | None = None
) -> list[tuple[str, str, list[str], np.ndarray]]:
    """(sequence, category, frame paths, (N, 4, 4) cam2world) of the evaluated CO3Dv2 sequences.

    Raises:
        FileNotFoundError when a category lacks its annotations, ValueError when no sequence qualifies.
    """
    config = config or Co3dEvalConfig()
    root = Path(root)
    categories = config.categories or tuple(
        sorted(p.name for p in root.iterdir() if (p / "frame_annotations.jgz").is_file())
    )
    if not categories:
        raise ValueError(f"{root}: no category folder with frame_annotations.jgz; pass the CO3Dv2 root as --data")
    sequences = []
    for category in categories:
        folder = root / category
        set_list_path = folder / "set_lists" / config.set_list
        if not set_list_path.is_file():
            raise FileNotFoundError(f"{set_list_path}: missing; CO3Dv2 ships it in each category's set_lists/")
        listed = {entry[0] for entry in json.loads(set_list_path.read_text())[config.split]}
        quality = {
            s["sequence_name"]: s.get("viewpoint_quality_score") for s in read_jgz(folder / "sequence_annotations.jgz")
        }
        frames: dict[str, list[tuple[int, str, np.ndarray]]] = defaultdict(list)
        for frame in read_jgz(folder / "frame_annotations.jgz"):
            name = frame["sequence_name"]
            score = quality.get(name)
            if name not in listed or score is None or not score > config.min_quality:
                continue
            if np.sum(frame["viewpoint"]["T"]) > 1e5:  # a broken camera in the annotations
                continue
            pose = viewpoint_to_cam2world(frame["viewpoint"]["R"], frame["viewpoint"]["T"])
            frames[name].append((frame["frame_number"], str(root / frame["image"]["path"]), pose))
        kept = [name for name in sorted(frames) if len(frames[name]) >= max(config.min_frames, config.frames)]
        for name in kept[: config.max_sequences]:
            ordered = sorted(frames[name], key=lambda f: f[0])
            chosen = [ordered[k] for k in choose_frames(len(ordered), config.frames, config.seed, f"{category}/{name}")]
            sequences.append((name, category, [f[1] for f in chosen], np.stack([f[2] for f in chosen])))
    if not sequences:
        raise ValueError(
            f"{root}: no {config.split} sequence of {', '.join(categories)} has quality > {config.min_quality} and "
            f"{config.min_frames} frames; check the layout or lower min_frames"
        )
    return sequences
