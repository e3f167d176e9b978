"""A synthetic Scene with closed-form geometry: three cameras looking at the plane z = 5."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.align.scene import Scene
from pointmap.images import View

HEIGHT, WIDTH = 24, 32  # processed image
FOCAL = 30.0
# processed pixel -> original pixel: scale 2.5 then a crop offset of (4, 6), as a 512 resize-and-crop would.
TO_ORIGINAL = np.array([[2.5, 0.0, 4.0], [0.0, 2.5, 6.0], [0.0, 0.0, 1.0]])
ORIGINAL_SHAPE = (72, 88)  # (H, W) of the photo: the processed image covers 80 x 60 pixels of it
PLANE_Z = 5.0


def rotation_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def camera_poses() -> np.ndarray:
    """(3, 4, 4) cam2world: the identity, then two cameras moved sideways and turned to the plane."""
    poses = np.tile(np.eye(4), (3, 1, 1))
    for index, (x, angle) in enumerate([(0.8, -0.15), (-0.6, 0.1)], start=1):
        poses[index, :3, :3] = rotation_y(angle)
        poses[index, :3, 3] = [x, 0.1 * index, 0.3]
    return poses


def plane_geometry(cam2world: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form z-depth (H, W) and world points (H, W, 3) of the plane z = PLANE_Z seen by one camera."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rays_cam = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ np.linalg.inv(K).T  # z = 1
    rays_world = rays_cam @ cam2world[:3, :3].T
    depth = (PLANE_Z - cam2world[2, 3]) / rays_world[..., 2]  # the ray's camera z is 1: s is the z-depth
    points = cam2world[:3, 3] + depth[..., None] * rays_world
    return depth, points


def build_scene(folder, with_views: bool = True) -> Scene:
    poses = camera_poses()
    K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
    depths, points, confidences, masks, colors, views = [], [], [], [], [], []
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    for index in range(3):
        depth, pts = plane_geometry(poses[index], K)
        confidence = 1.0 + (xs + 2 * ys + index) % 7
        color = np.stack([xs / WIDTH, ys / HEIGHT, np.full_like(xs, index / 3.0, dtype=np.float64)], axis=-1)
        depths.append(torch.tensor(depth, dtype=torch.float32))
        points.append(torch.tensor(pts, dtype=torch.float32))
        confidences.append(torch.tensor(confidence, dtype=torch.float32))
        masks.append(torch.tensor(confidence > 2))
        colors.append(torch.tensor(color, dtype=torch.float32))
        path = folder / f"photo_{index}.jpg"
        Image.new("RGB", ORIGINAL_SHAPE[::-1], (index * 80, 100, 50)).save(path)
        views.append(
            View(
                img=torch.zeros(3, HEIGHT, WIDTH),
                true_shape=(HEIGHT, WIDTH),
                path=str(path),
                to_original=TO_ORIGINAL.copy(),
                original_shape=ORIGINAL_SHAPE,
            )
        )
    return Scene(
        poses=torch.tensor(poses, dtype=torch.float32),
        intrinsics=torch.tensor(np.tile(K, (3, 1, 1)), dtype=torch.float32),
        depths=depths,
        points=points,
        confidences=confidences,
        masks=masks,
        colors=colors,
        views=views if with_views else None,
    )


@pytest.fixture
def scene(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    return build_scene(photos)


def no_temp_files(folder) -> bool:
    """True when nothing under `folder` looks like a leftover temporary file or folder."""
    return not [p for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name or ".old" in p.name]
