import pytest
import torch
from two_view_scene import angle_between_deg, corrupt, make_two_view_scene, noisy_depth_points, rotation_error_deg

from pointmap.geometry.cameras import pixel_grid
from pointmap.geometry.pnp import pnp_ransac, relative_pose_procrustes

HEIGHT, WIDTH = 96, 128


@pytest.fixture(scope="module")
def scene():
    return make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)


def test_procrustes_pose_noise_free_is_exact(scene):
    pose, scale = relative_pose_procrustes(scene.pts2_in_1[None], 0.5 * scene.pts2_in_2[None])
    torch.testing.assert_close(pose[0], scene.cam2_to_cam1, atol=1e-9, rtol=0)
    torch.testing.assert_close(scale, torch.tensor([2.0], dtype=torch.float64))


def test_procrustes_pose_with_noise_and_outliers(scene):
    # Harder than depth noise: 1 % of the depth as Gaussian noise on every axis, independently in both
    # pointmaps, and 5 % of each pointmap's points thrown anywhere in the scene.
    gen = torch.Generator().manual_seed(0)
    pts2_in_1 = corrupt(scene.pts2_in_1, gen)
    pts2_in_2 = corrupt(0.7 * scene.pts2_in_2, gen)
    pose, scale = relative_pose_procrustes(pts2_in_1[None], pts2_in_2[None])
    true = scene.cam2_to_cam1
    assert rotation_error_deg(pose[0, :3, :3], true[:3, :3]) < 0.1
    assert angle_between_deg(pose[0, :3, 3], true[:3, 3]) < 0.5
    assert abs(float(scale[0]) * 0.7 - 1) < 0.005
    # Without the robust reweighting the outliers pull the translation past the bound.
    plain, _ = relative_pose_procrustes(pts2_in_1[None], pts2_in_2[None], iterations=0)
    assert angle_between_deg(plain[0, :3, 3], true[:3, 3]) > 1.0


def test_procrustes_pose_is_batched_and_ignores_zero_weights(scene):
    pts = torch.stack([scene.pts2_in_1, scene.pts2_in_1.flip(0)])  # a second, unrelated problem
    src = torch.stack([scene.pts2_in_2, scene.pts2_in_2.flip(0)])
    weights = torch.ones(2, HEIGHT, WIDTH, dtype=torch.float64)
    src = src.clone()
    src[:, :10] = 1e3  # garbage where the weight is zero
    weights[:, :10] = 0
    pose, _ = relative_pose_procrustes(pts, src, weights)
    torch.testing.assert_close(pose, scene.cam2_to_cam1.expand(2, 4, 4), atol=1e-9, rtol=0)


def test_pnp_pose_with_depth_noise_and_outliers(scene):
    gen = torch.Generator().manual_seed(1)
    pts2_in_1 = noisy_depth_points(scene.depth2, scene.K2, gen, scene.cam2_to_cam1)
    pixels = pixel_grid(HEIGHT, WIDTH, dtype=torch.float64)
    pose, inliers = pnp_ransac(pts2_in_1.reshape(-1, 3), pixels.reshape(-1, 2), scene.K2, seed=3)
    true = scene.cam2_to_cam1
    assert rotation_error_deg(pose[:3, :3], true[:3, :3]) < 0.1
    assert angle_between_deg(pose[:3, 3], true[:3, 3]) < 0.5
    assert 0.94 < float(inliers.float().mean()) < 0.97  # 95 % good points, a few outliers land near their pixel
    again, _ = pnp_ransac(pts2_in_1.reshape(-1, 3), pixels.reshape(-1, 2), scene.K2, seed=3)
    assert torch.equal(pose, again)


def test_pnp_pose_with_isotropic_noise_is_close(scene):
    # Noise across the rays biases PnP (errors in the 3D points), so the bound is looser here.
    gen = torch.Generator().manual_seed(2)
    pts2_in_1 = corrupt(scene.pts2_in_1, gen)
    pixels = pixel_grid(HEIGHT, WIDTH, dtype=torch.float64)
    pose, _ = pnp_ransac(pts2_in_1.reshape(-1, 3), pixels.reshape(-1, 2), scene.K2)
    assert rotation_error_deg(pose[:3, :3], scene.cam2_to_cam1[:3, :3]) < 0.1
    assert angle_between_deg(pose[:3, 3], scene.cam2_to_cam1[:3, 3]) < 1.5


def test_pose_input_errors(scene):
    with pytest.raises(ValueError, match="at least 4 points, got 3"):
        pnp_ransac(torch.rand(3, 3), torch.rand(3, 2), scene.K2)
    with pytest.raises(ValueError, match=r"pass \(N, 3\) and \(N, 2\)"):
        pnp_ransac(torch.rand(10, 3), torch.rand(9, 2), scene.K2)
    with pytest.raises(ValueError, match="pass equal"):
        relative_pose_procrustes(torch.rand(1, 10, 3), torch.rand(1, 11, 3))
