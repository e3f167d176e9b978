import math

import torch

from pointmap.geometry.cameras import (
    depth_to_points,
    intrinsics_from_focal,
    invert_pose,
    project_points,
    transform_points,
)
from pointmap.geometry.focal import estimate_focal
from pointmap.geometry.procrustes import similarity_matrix, weighted_procrustes


def random_rotation(gen: torch.Generator, batch: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    return q * torch.sign(torch.linalg.det(q))[:, None, None]


def smooth_depth(gen: torch.Generator, batch: int, height: int, width: int) -> torch.Tensor:
    coarse = 2.0 + torch.rand(batch, 1, 4, 5, generator=gen, dtype=torch.float64) * 3
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)[:, 0]


def test_depth_to_points_projects_back_to_pixels():
    gen = torch.Generator().manual_seed(0)
    depth = smooth_depth(gen, 2, 12, 16)
    K = intrinsics_from_focal(torch.tensor([20.0, 31.0], dtype=torch.float64), 12, 16)
    pts = depth_to_points(depth, K)
    uv = project_points(pts, K)
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    torch.testing.assert_close(uv[..., 0], xs.double().expand(2, -1, -1))
    torch.testing.assert_close(uv[..., 1], ys.double().expand(2, -1, -1))
    torch.testing.assert_close(pts[..., 2], depth)


def test_invert_pose_and_transform_round_trip():
    gen = torch.Generator().manual_seed(1)
    pose = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    pose[:, :3, :3] = random_rotation(gen, 3)
    pose[:, :3, 3] = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    pts = torch.randn(3, 7, 3, generator=gen, dtype=torch.float64)
    back = transform_points(invert_pose(pose), transform_points(pose, pts))
    torch.testing.assert_close(back, pts)


def test_focal_exact_and_robust_to_outliers():
    gen = torch.Generator().manual_seed(2)
    height, width = 48, 64
    focal = torch.tensor([40.0, 75.0], dtype=torch.float64)
    depth = smooth_depth(gen, 2, height, width)
    pts = depth_to_points(depth, intrinsics_from_focal(focal, height, width))
    torch.testing.assert_close(estimate_focal(pts), focal, rtol=1e-9, atol=0)

    noisy = pts * (1 + 0.01 * torch.randn(2, height, width, 1, generator=gen, dtype=torch.float64))
    outliers = torch.rand(2, height, width, generator=gen) < 0.05
    noisy[outliers] = noisy[outliers] * torch.tensor([1.6, 0.5, 1.0], dtype=torch.float64)
    rel_err = (estimate_focal(noisy) / focal - 1).abs()
    assert rel_err.max() < 0.005, rel_err


def test_weighted_procrustes_recovers_similarity_despite_down_weighted_outliers():
    gen = torch.Generator().manual_seed(3)
    src = torch.randn(4, 200, 3, generator=gen, dtype=torch.float64)
    rotation = random_rotation(gen, 4)
    scale = torch.tensor([0.5, 1.0, 2.0, 7.0], dtype=torch.float64)
    translation = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    dst = scale[:, None, None] * src @ rotation.transpose(1, 2) + translation[:, None]
    weights = torch.ones(4, 200, dtype=torch.float64)
    dst[:, :10] += 5.0
    weights[:, :10] = 0.0
    s, R, t = weighted_procrustes(src, dst, weights)
    torch.testing.assert_close(s, scale)
    torch.testing.assert_close(R, rotation)
    torch.testing.assert_close(t, translation)
    sim = similarity_matrix(s, R, t)
    torch.testing.assert_close(transform_points(sim, src)[:, 10:], dst[:, 10:])
    _, R_rigid, _ = weighted_procrustes(src, dst, weights, with_scale=False)
    assert math.isclose(torch.linalg.det(R_rigid[0]).item(), 1.0, rel_tol=1e-9)
