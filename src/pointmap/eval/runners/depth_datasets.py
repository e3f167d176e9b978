"""Monocular depth test sets in their usual on-disk layouts: NYUv2, KITTI, TUM RGB-D, Bonn RGB-D, Sintel.

Layouts (ROOT is --data):

    nyuv2    ROOT/rgb/NAME.{png,jpg} + ROOT/depth/NAME.png, uint16 millimetres (the 654 test images of the
             official split, extracted from nyu_depth_v2_labeled.mat); Eigen crop rows 45-470, columns
             41-600 of 480 x 640, depth up to 10 m.
    kitti    ROOT/image/NAME.png + ROOT/depth/NAME.png, KITTI's annotated depth (uint16, metres * 256, 0 where
             unknown) of the Eigen test images; Garg crop, depth up to 80 m.
    tum      ROOT/SEQUENCE/{rgb.txt, depth.txt, rgb/, depth/} as TUM RGB-D ships it: depth PNG metres * 5000;
             each colour frame paired with the nearest depth frame within 20 ms (TUM's associate.py rule).
    bonn     the same layout and depth scale as tum (Bonn RGB-D Dynamic is recorded in TUM's format).
    sintel   ROOT/training/final/SCENE/frame_NNNN.png + ROOT/training/depth/SCENE/frame_NNNN.dpt (MPI Sintel
             depth: tag 202021.25, int32 width, int32 height, float32 depth row by row).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pointmap.eval.depth import DepthItem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SINTEL_TAG = 202021.25
TUM_MAX_OFFSET = 0.02
"""Largest colour-depth timestamp difference (s) of an associated pair, as TUM's associate.py defaults."""


@dataclass(frozen=True)
class DepthProtocol:
    """How a depth test set is scored."""

    max_depth: float | None
    """Ground truth beyond this (metres) is ignored."""
    crop: tuple[float, float, float, float] | None = None
    """(top, bottom, left, right) of the evaluated region as fractions of the image, or None for all of it."""


PROTOCOLS = {
    "nyuv2": DepthProtocol(10.0, (45 / 480, 471 / 480, 41 / 640, 601 / 640)),
    "kitti": DepthProtocol(80.0, (0.40810811, 0.99189189, 0.03594771, 0.96405229)),
    "tum": DepthProtocol(10.0),
    "bonn": DepthProtocol(10.0),
    "sintel": DepthProtocol(None),
}
"""The depth test sets `depth_items` reads, with their scoring."""


def read_png_depth(path: Path, metres_per_step: float) -> np.ndarray:
    """(H, W) float32 metres from a 16-bit depth PNG; 0 stays 0 (unknown)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2:
        raise ValueError(f"{path}: not a single-channel 16-bit depth PNG; check the dataset layout")
    return raw.astype(np.float32) * metres_per_step


def read_dpt(path: Path) -> np.ndarray:
    """(H, W) float32 depth of an MPI Sintel .dpt file."""
    data = path.read_bytes()
    tag = np.frombuffer(data, dtype="<f4", count=1)[0]
    width, height = np.frombuffer(data, dtype="<i4", count=2, offset=4)
    if tag != np.float32(SINTEL_TAG) or len(data) != 12 + 4 * int(width) * int(height):
        raise ValueError(f"{path}: not a Sintel .dpt depth file (tag {tag}, {len(data)} bytes)")
    return np.frombuffer(data, dtype="<f4", offset=12).reshape(int(height), int(width)).copy()


def _crop_mask(shape: tuple[int, int], crop) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    if crop is None:
        mask[:] = True
        return mask
    height, width = shape
    top, bottom, left, right = crop
    mask[int(top * height) : int(bottom * height), int(left * width) : int(right * width)] = True
    return mask


def _loader(read: Callable[[], np.ndarray], crop) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load() -> tuple[np.ndarray, np.ndarray]:
        depth = read()
        return depth, (depth > 0) & np.isfinite(depth) & _crop_mask(depth.shape, crop)

    return load


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: missing; see `pointmap eval --help` for the layout")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _by_stem(image_dir: Path, depth_dir: Path, suffix: str, read, group: str, crop) -> list[DepthItem]:
    items = []
    for image in _images(image_dir):
        depth_path = depth_dir / f"{image.stem}{suffix}"
        if depth_path.is_file():
            load = _loader(functools.partial(read, depth_path), crop)
            items.append((f"{group}/{image.stem}", group, str(image), load))
    return items


def read_timestamps(path: Path) -> list[tuple[float, str]]:
    """(timestamp, file) lines of a TUM rgb.txt / depth.txt, comments skipped."""
    entries = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.startswith("#"):
            entries.append((float(fields[0]), fields[1]))
    return entries


def associate(colour: list[tuple[float, str]], depth: list[tuple[float, str]]) -> list[tuple[str, str]]:
    """(colour file, depth file) pairs: each colour frame with its nearest depth frame within 20 ms."""
    if not depth:
        return []
    times = np.array([t for t, _ in depth])
    pairs = []
    for stamp, name in colour:
        nearest = int(np.argmin(np.abs(times - stamp)))
        if abs(times[nearest] - stamp) <= TUM_MAX_OFFSET:
            pairs.append((name, depth[nearest][1]))
    return pairs


def depth_items(dataset: str, root: str | Path, max_images: int | None = None) -> list[DepthItem]:
    """The test images of a depth dataset with lazy ground-truth loaders (see DepthItem), sorted by name.

    Args:
        dataset: a key of PROTOCOLS.
        root: the dataset folder in the layout of the module docstring.
        max_images: keep every k-th image so that at most this many remain (sequences stay spread out).
    """
    if dataset not in PROTOCOLS:
        raise ValueError(f"depth dataset {dataset!r} unknown; pick one of {', '.join(PROTOCOLS)}")
    root, crop = Path(root), PROTOCOLS[dataset].crop
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; pass the {dataset} dataset folder as --data")
    if dataset == "nyuv2":
        read_mm = functools.partial(read_png_depth, metres_per_step=1e-3)
        items = _by_stem(root / "rgb", root / "depth", ".png", read_mm, "nyuv2", crop)
    elif dataset == "kitti":
        read_kitti = functools.partial(read_png_depth, metres_per_step=1 / 256)
        items = _by_stem(root / "image", root / "depth", ".png", read_kitti, "kitti", crop)
    elif dataset == "sintel":
        final, depth_root = root / "training" / "final", root / "training" / "depth"
        scenes = sorted(p.name for p in final.glob("*") if p.is_dir())
        items = [item for scene in scenes for item in _by_stem(final / scene, depth_root / scene, ".dpt", read_dpt,
                                                               scene, crop)]
    else:
        items = []
        sequences = [p for p in root.iterdir() if (p / "rgb.txt").is_file() and (p / "depth.txt").is_file()]
        for sequence in sorted(sequences):
            pairs = associate(read_timestamps(sequence / "rgb.txt"), read_timestamps(sequence / "depth.txt"))
            items += [
                (f"{sequence.name}/{Path(colour).stem}", sequence.name, str(sequence / colour),
                 _loader(functools.partial(read_png_depth, sequence / depth, 1 / 5000), crop))
                for colour, depth in pairs
            ]
    if not items:
        raise ValueError(f"{root}: no image with ground-truth depth in the {dataset} layout; see `pointmap eval -h`")
    if max_images is not None and len(items) > max_images:
        items = items[:: -(-len(items) // max_images)]
    return items
