"""RealEstate10K multi-view pose test clips from the published camera files plus extracted frames.

Layout: the release's camera files, and each clip's frames extracted from its video (the release ships no
pixels), named by the timestamp of their camera line:

    ROOT/test/{clip}.txt                first line the video URL, then one line per frame:
                                        timestamp fx fy cx cy k1 k2 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3
                                        (intrinsics relative to the image size; [R | t] world-to-camera,
                                        OpenCV axes)
    ROOT/frames/{clip}/{timestamp}.png  (or .jpg)

Protocol (DUSt3R Tab. 2): 10 random frames per test clip, every pair of them scored; frames without an
image file are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointmap.eval.sequences import choose_frames

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class RealEstate10kEvalConfig:
    """Which RealEstate10K clips and frames are evaluated."""

    frames: int = 10
    """Frames sampled per clip."""
    seed: int = 0
    """Seed of the frame sampling."""
    split: str = "test"
    """Folder of camera files under the root."""
    max_sequences: int | None = None
    """At most this many clips (the first by name), None for all."""


def read_camera_file(path: Path) -> list[tuple[str, np.ndarray]]:
    """(timestamp, (4, 4) cam2world) per frame line of a RealEstate10K camera file."""
    cameras = []
    lines = path.read_text().splitlines()[1:]  # the first line is the video URL
    for number, line in enumerate(lines, start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 19:
            raise ValueError(f"{path}:{number}: {len(fields)} fields; a RealEstate10K camera line has 19")
        world2cam = np.eye(4)
        world2cam[:3] = np.array(fields[7:], dtype=np.float64).reshape(3, 4)
        cameras.append((fields[0], np.linalg.inv(world2cam)))
    return cameras


def _frame_path(folder: Path, timestamp: str) -> Path | None:
    for suffix in FRAME_SUFFIXES:
        if (folder / f"{timestamp}{suffix}").is_file():
            return folder / f"{timestamp}{suffix}"
    return None


def realestate10k_sequences(
    root: str | Path, config: RealEstate10kEvalConfig | None = None
) -> list[tuple[str, str, list[str], np.ndarray]]:
    """(clip, "realestate10k", frame paths, (N, 4, 4) cam2world) of the evaluated clips."""
    config = config or RealEstate10kEvalConfig()
    root = Path(root)
    camera_files = sorted((root / config.split).glob("*.txt"))
    if not camera_files:
        raise FileNotFoundError(
            f"{root / config.split}: no camera files (*.txt); pass the RealEstate10K root as --data"
        )
    sequences = []
    for camera_file in camera_files:
        clip = camera_file.stem
        frames = [
            (str(path), pose)
            for timestamp, pose in read_camera_file(camera_file)
            if (path := _frame_path(root / "frames" / clip, timestamp)) is not None
        ]
        if len(frames) < config.frames:
            continue
        chosen = [frames[k] for k in choose_frames(len(frames), config.frames, config.seed, clip)]
        sequences.append((clip, "realestate10k", [f[0] for f in chosen], np.stack([f[1] for f in chosen])))
        if config.max_sequences is not None and len(sequences) >= config.max_sequences:
            break
    if not sequences:
        raise ValueError(
            f"{root}: no clip has {config.frames} frames with images in {root / 'frames'}/CLIP/TIMESTAMP.png; "
            "extract the frames of each clip first"
        )
    return sequences
