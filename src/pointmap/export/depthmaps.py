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


def npy_bytes(array: np.ndarray) -> bytes:
    """The .npy file content of `array`."""
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
        atomic_write_bytes(depth_dir / f"{stem}.npy", npy_bytes(depth))
        atomic_write_bytes(conf_dir / f"{stem}.npy", npy_bytes(confidence))
        values, scale = quantize_depth(depth)
        atomic_write_bytes(depth_dir / f"{stem}.png", encode_png(values))
        scales.append(scale)
    atomic_write_text(depth_dir / "README.txt", DEPTH_README)
    return scales


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8 RGB: OpenCV's turbo colour map of inverse depth (near is red).

    Inverse depth spreads the colours over near surfaces, where the detail is; the 2nd and 98th
    percentiles set the range so that a few outliers do not flatten the picture.
    """
    valid = np.isfinite(depth) & (depth > 0)
    inverse = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0)
    if valid.any():
        low, high = np.percentile(inverse[valid], [2, 98])
    else:
        low, high = 0.0, 1.0
    normalised = np.clip((inverse - low) / max(high - low, 1e-12), 0, 1)
    bgr = cv2.applyColorMap(np.rint(normalised * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    bgr[~valid] = 0
    return bgr[..., ::-1].copy()


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) grey / uint16 or (H, W, 3) RGB uint8 image."""
    ok, png = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 else image)  # OpenCV wants BGR
    if not ok:
        raise RuntimeError(f"OpenCV could not encode an image of shape {image.shape} as PNG")
    return png.tobytes()
