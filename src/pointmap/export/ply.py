"""Binary little-endian PLY point clouds with colour and confidence, written and read back."""

from __future__ import annotations

import os

import numpy as np

from pointmap.io_utils import atomic_write_bytes

# One vertex record; the property names are the ones MeshLab, CloudCompare, Open3D and trimesh know,
# plus "confidence" (ignored by viewers that do not know it, kept by CloudCompare as a scalar field).
_PROPERTIES = [
    ("x", "<f4", "float"),
    ("y", "<f4", "float"),
    ("z", "<f4", "float"),
    ("red", "u1", "uchar"),
    ("green", "u1", "uchar"),
    ("blue", "u1", "uchar"),
    ("confidence", "<f4", "float"),
]
_VERTEX = np.dtype([(name, dtype) for name, dtype, _ in _PROPERTIES])
_HEADER_PROPERTIES = [f"property {ply_type} {name}" for name, _, ply_type in _PROPERTIES]


def write_ply(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray, confidence: np.ndarray) -> None:
    """Write a coloured point cloud atomically.

    Args:
        path: the .ply file.
        xyz: (M, 3) positions.
        rgb: (M, 3) uint8 colours.
        confidence: (M,) per-point confidence.
    """
    xyz = np.asarray(xyz)
    count = len(xyz)
    if xyz.shape != (count, 3) or np.shape(rgb) != (count, 3) or np.shape(confidence) != (count,):
        raise ValueError(
            f"write_ply: xyz {xyz.shape}, rgb {np.shape(rgb)}, confidence {np.shape(confidence)}; "
            "pass (M, 3), (M, 3) and (M,) arrays"
        )
    vertices = np.empty(count, dtype=_VERTEX)
    vertices["x"], vertices["y"], vertices["z"] = xyz.astype(np.float32).T
    vertices["red"], vertices["green"], vertices["blue"] = np.asarray(rgb, dtype=np.uint8).T
    vertices["confidence"] = confidence
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", f"element vertex {count}", *_HEADER_PROPERTIES, "end_header\n"]
    )
    atomic_write_bytes(path, header.encode("ascii") + vertices.tobytes())


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a PLY written by `write_ply`.

    Returns:
        xyz (M, 3) float32, rgb (M, 3) uint8, confidence (M,) float32.
    """
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file; pass a points.ply written by pointmap")
    header = data[:end].decode("ascii").splitlines()
    expected = ["format binary_little_endian 1.0", *_HEADER_PROPERTIES]
    lines = [line for line in header if not line.startswith(("ply", "element", "comment"))]
    counts = [int(line.split()[2]) for line in header if line.startswith("element vertex")]
    if lines != expected or len(counts) != 1:
        raise ValueError(f"{path}: PLY layout differs from pointmap's (x y z red green blue confidence)")
    vertices = np.frombuffer(data, dtype=_VERTEX, count=counts[0], offset=end + len(b"end_header\n"))
    xyz = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=-1)
    rgb = np.stack([vertices["red"], vertices["green"], vertices["blue"]], axis=-1)
    return xyz, rgb, vertices["confidence"].copy()
