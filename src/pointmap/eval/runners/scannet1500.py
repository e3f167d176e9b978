"""ScanNet-1500 two-view pose pairs (SuperGlue's test set, in LoFTR's release layout).

Layout:

    ROOT/test.npz                 "name": (P, 4) int rows (scene, sub-scene, frame 1, frame 2)
                                  (LoFTR's assets/scannet_test_1500/test.npz)
    ROOT/intrinsics.npz           "scene{scene:04d}_{sub:02d}" -> (3, 3) K of the colour images
    ROOT/scene0707_00/color/{frame}.jpg     640 x 480 colour
    ROOT/scene0707_00/depth/{frame}.png     uint16 millimetres (optional: no depth metrics without it)
    ROOT/scene0707_00/pose/{frame}.txt      (4, 4) cam2world, OpenCV axes

Protocol (SuperGlue, LoFTR): pose error = max(rotation, translation direction) of T_1to2, AUC@5/10/20;
the classical baseline gets the ground-truth K.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from pointmap.data.formats.files import read_rgb
from pointmap.data.sample import ViewSample


def scannet_frame(scene_dir: Path, frame: int, K: np.ndarray) -> ViewSample:
    """One ScanNet frame as a ViewSample (depth 0 where unknown or missing)."""
    image = read_rgb(scene_dir / "color" / f"{frame}.jpg")
    height, width = image.shape[-2:]
    depth = np.zeros((height, width), dtype=np.float32)
    depth_path = scene_dir / "depth" / f"{frame}.png"
    if depth_path.is_file():
        millimetres = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
        if millimetres is None:
            raise ValueError(f"{depth_path}: OpenCV cannot read it; ScanNet depth is a 16-bit PNG in millimetres")
        if millimetres.shape != (height, width):
            # The depth sensor's grid covers the colour image; nearest keeps depth edges unmixed.
            millimetres = cv2.resize(millimetres, (width, height), interpolation=cv2.INTER_NEAREST)
        depth = millimetres.astype(np.float32) / 1000
    pose_path = scene_dir / "pose" / f"{frame}.txt"
    cam2world = np.loadtxt(pose_path).reshape(4, 4)
    if not np.isfinite(cam2world).all():
        raise ValueError(f"{pose_path}: pose has non-finite entries; this pair has no ground truth")
    return ViewSample(
        image=image,
        depth=torch.from_numpy(depth),
        valid=torch.from_numpy(depth > 0),
        intrinsics=torch.from_numpy(np.asarray(K, dtype=np.float32)),
        cam2world=torch.from_numpy(cam2world.astype(np.float32)),
        source=str(scene_dir / "color" / f"{frame}.jpg"),
    )


def scannet1500_pairs(
    root: str | Path, max_pairs: int | None = None
) -> Iterator[tuple[str, str, ViewSample, ViewSample, dict]]:
    """(pair name, group "all", view1, view2, {}) of the test pairs, read lazily in the order of test.npz."""
    root = Path(root)
    for name in ("test.npz", "intrinsics.npz"):
        if not (root / name).is_file():
            raise FileNotFoundError(
                f"{root / name}: missing; copy LoFTR's assets/scannet_test_1500/{name} next to the scene folders"
            )
    with np.load(root / "test.npz") as index:
        rows = np.asarray(index["name"]).astype(np.int64)
    with np.load(root / "intrinsics.npz") as intrinsics:
        K_of = {scene: np.asarray(intrinsics[scene], dtype=np.float64).reshape(3, 3) for scene in intrinsics.files}
    for scene, sub, frame1, frame2 in rows[:max_pairs]:
        scene_name = f"scene{scene:04d}_{sub:02d}"
        if scene_name not in K_of:
            raise ValueError(f"{root / 'intrinsics.npz'}: no K for {scene_name}; use LoFTR's intrinsics.npz")
        scene_dir = root / scene_name
        view1 = scannet_frame(scene_dir, int(frame1), K_of[scene_name])
        view2 = scannet_frame(scene_dir, int(frame2), K_of[scene_name])
        yield f"{scene_name}/{frame1}-{frame2}", "all", view1, view2, {}
