"""Per-image depth and confidence maps: float32 .npy and 16-bit .png (scale in cameras.json)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np

from pointmap.align.scene import Scene
from pointmap.io_utils import atomic_write_bytes, atomic_write_text

DEPTH_README = """Depth and confidence maps, one per image, at the processed (network) resolution.

depth/NAME.npy        float32 (H, W) z-depth along the camera's optical axis, in scene units.
depth/NAME.png        uint16 (H, W): depth = value * depth_png_scale, with depth_png_scale per image in
                      ../cameras.json (the image's largest depth maps to 65535; 0 means no depth).
                      The quantisation error is at most depth_png_scale / 2.
confidence/NAME.npy   float32 (H, W) network confidence, >= 1 (higher is more reliable).

The intrinsics of these maps are cameras.json's "processed" K; "to_original" maps their pixels to the
original photo's.
"""


def unique_stems(names: list[str]) -> list[str]:
    """File stems for image names: "sub/IMG_1.jpg" -> "sub_IMG_1", made unique with a suffix on clashes."""
    stems: list[str] = []
    for name in names:
        stem = Path(name).with_suffix("").as_posix().replace("/", "_")
        candidate, count = stem, 1
        while candidate in stems:
            candidate, count = f"{stem}_{count}", count + 1
        stems.append(candidate)
    return stems


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def quantize_depth(depth: np.ndarray) -> tuple[np.ndarray, float]:
    """(H, W) depth -> (H, W) uint16 and the scale with depth ~= value * scale (0 where depth <= 0 or NaN)."""
    valid = np.isfinite(depth) & (depth > 0)
    largest = float(depth[valid].max()) if valid.any() else 1.0
    scale = largest / 65535.0
    values = np.where(valid, np.rint(np.where(valid, depth, 0.0) / scale), 0)
    return np.clip(values, 0, 65535).astype(np.uint16), scale


def write_depth_maps(scene: Scene, folder: str | os.PathLike, stems: list[str]) -> list[float]:
    """Write depth/STEM.{npy,png}, confidence/STEM.npy and depth/README.txt under `folder`.

    Args:
        scene: the reconstruction.
        folder: the output folder (depth/ and confidence/ are created in it).
        stems: N file stems, e.g. from `unique_stems`.
    Returns:
        N depth PNG scales (depth = png value * scale), to be recorded in cameras.json.
    """
    depth_dir, conf_dir = Path(folder) / "depth", Path(folder) / "confidence"
    depth_dir.mkdir(exist_ok=True)
    conf_dir.mkdir(exist_ok=True)
    scales = []
    for index, stem in enumerate(stems):
        depth = scene.depths[index].detach().float().cpu().numpy()
        confidence = scene.confidences[index].detach().float().cpu().numpy()
        atomic_write_bytes(depth_dir / f"{stem}.npy", _npy_bytes(depth))
        atomic_write_bytes(conf_dir / f"{stem}.npy", _npy_bytes(confidence))
        values, scale = quantize_depth(depth)
        ok, png = cv2.imencode(".png", values)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode the depth PNG of {stem}")
        atomic_write_bytes(depth_dir / f"{stem}.png", png.tobytes())
        scales.append(scale)
    atomic_write_text(depth_dir / "README.txt", DEPTH_README)
    return scales
