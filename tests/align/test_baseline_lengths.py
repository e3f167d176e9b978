"""Baseline lengths from triangulated matches and depth maps of unknown scale: a chain of cameras round a sphere."""

import numpy as np
import torch

from pointmap.align.baselines import measured_baselines
from pointmap.align.bundle import refine_cameras
from pointmap.align.pose_chain import pair_poses
from pointmap.data.synthetic.cameras import look_at
from pointmap.eval.metrics import pairwise_pose_errors

SIZE, FOCAL = 224, 200.0
K = np.array([[FOCAL, 0, SIZE / 2], [0, FOCAL, SIZE / 2], [0, 0, 1]])


def sphere_depth(pose: np.ndarray) -> np.ndarray:
    """(SIZE, SIZE) z-depth of the unit sphere at the origin seen by `pose`; 10 where a ray misses it."""
    u, v = np.meshgrid(np.arange(SIZE, dtype=np.float64), np.arange(SIZE, dtype=np.float64))
    rays = np.stack([(u - K[0, 2]) / FOCAL, (v - K[1, 2]) / FOCAL, np.ones_like(u)], -1) @ pose[:3, :3].T
    centre = pose[:3, 3]
    # |centre + z ray|^2 = 1: a z^2 + 2 b z + c = 0, the nearer root
    a, b, c = (rays * rays).sum(-1), rays @ centre, centre @ centre - 1
    disc = b * b - a * c
    return np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, 10.0)


def chain_scene(rng: np.random.Generator, cameras: int = 6):
    """Cameras 2.5-4 units from a unit sphere, 15 deg apart round it; the matches of neighbouring pairs only
    (points on the sphere seen by both, 0.3 px noise), and each view's depth map times a scale of its own."""
    angles = np.radians(15.0) * np.arange(cameras)
    distances = rng.uniform(2.5, 4.0, cameras)
    centres = distances[:, None] * np.stack([np.sin(angles), -np.cos(angles), 0.2 * np.cos(2 * angles)], 1)
    poses = look_at(torch.from_numpy(centres), torch.zeros(cameras, 3, dtype=torch.float64)).numpy()  # z up
    points = rng.normal(size=(3000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    pixels, seen = [], []
    for pose in poses:
        in_camera = (points - pose[:3, 3]) @ pose[:3, :3]
        projected = in_camera @ K.T
        xy = projected[:, :2] / projected[:, 2:] + rng.normal(0, 0.3, (len(points), 2))
        facing = (points * (pose[:3, 3] - points)).sum(1) > 0
        pixels.append(xy)
        seen.append(facing & (xy >= 0).all(1) & (xy <= SIZE - 1).all(1))
    matches = {}
    for i in range(cameras - 1):
        both = seen[i] & seen[i + 1]
        matches[(i, i + 1)] = torch.from_numpy(pixels[i][both]), torch.from_numpy(pixels[i + 1][both])
    scales = np.exp(rng.uniform(-0.7, 0.7, cameras))
    depths = [torch.from_numpy(sphere_depth(pose) * scale).float() for pose, scale in zip(poses, scales, strict=True)]
    return poses, matches, depths


def test_lengths_come_from_depth_maps_of_any_scale():
    """Each view's depth map is off by its own factor (0.5-2 x); the measured lengths are the true ones times one
    common factor, within 3 % (1.5 % here)."""
    poses, matches, depths = chain_scene(np.random.default_rng(0))
    intrinsics = torch.from_numpy(np.repeat(K[None], len(poses), 0))
    lengths = measured_baselines(pair_poses(matches, intrinsics), matches, intrinsics, depths)
    assert set(lengths) == set(matches)
    ratios = np.array([lengths[(i, j)] / np.linalg.norm(poses[i, :3, 3] - poses[j, :3, 3]) for i, j in matches])
    assert ratios.max() / ratios.min() < 1.03


def test_a_chain_of_pairs_stands_where_the_depths_put_it():
    """Neighbouring pairs only: each pair fixes its baseline direction, and only the lengths place the chain's
    far cameras. From start lengths 0.5-2 x wrong, the adjustment with the depth maps gives every pair's
    translation direction within 2 deg (0.5 here); held to the start's lengths, some are 10+ deg off (17 here)."""
    rng = np.random.default_rng(1)
    poses, matches, depths = chain_scene(rng)
    start = poses.copy()
    for k in range(1, len(poses)):  # the true directions, lengths off by 0.5-2 x
        step = poses[k, :3, 3] - poses[k - 1, :3, 3]
        start[k, :3, 3] = start[k - 1, :3, 3] + step * np.exp(rng.uniform(-0.7, 0.7))
    intrinsics = torch.from_numpy(np.repeat(K[None], len(poses), 0))
    groups = [0] * len(poses)
    with_depths = refine_cameras(matches, torch.from_numpy(start), intrinsics, groups, fix_focals=True, depths=depths)
    without = refine_cameras(matches, torch.from_numpy(start), intrinsics, groups, fix_focals=True)
    assert pairwise_pose_errors(with_depths.poses.numpy(), poses)[1].max() < 2.0
    assert pairwise_pose_errors(without.poses.numpy(), poses)[1].max() > 10.0
