"""Camera sampling: look-at poses, FOV intrinsics, and the overlap measure on constructed cases."""

import math

import pytest
import torch

from pointmap.data.synthetic.cameras import intrinsics_from_fov, look_at, overlap


def test_look_at_is_an_opencv_pose_towards_the_target():
    eye = torch.tensor([[1.0, 2.0, 1.5], [0.0, 0.0, 3.0]])
    target = torch.tensor([[4.0, 6.0, 1.5], [0.5, 0.0, 0.0]])
    pose = look_at(eye, target, roll=torch.tensor([0.0, 0.3]))
    rotation = pose[:, :3, :3]
    torch.testing.assert_close(rotation.transpose(1, 2) @ rotation, torch.eye(3).expand(2, 3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(2))
    forward = (target - eye) / (target - eye).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(rotation[:, :, 2], forward)
    torch.testing.assert_close(pose[:, :3, 3], eye)
    # No roll on a level view: image x is horizontal and image y points down (world z up).
    torch.testing.assert_close(rotation[0, :, 0], torch.tensor([0.8, -0.6, 0.0]))
    assert rotation[0, 2, 1] == pytest.approx(-1.0)


def test_intrinsics_from_fov():
    K = intrinsics_from_fov(torch.tensor([90.0, 60.0]), 48, 64)
    assert K[0, 0, 0].item() == pytest.approx(32.0)
    assert K[1, 1, 1].item() == pytest.approx(32.0 / math.tan(math.radians(30)))
    assert K[0, 0, 2].item() == 32 and K[0, 1, 2].item() == 24


def _plane_view(eye_x: float, height: int = 20, width: int = 40):
    """Fronto-parallel view of the plane z = 5 (world = camera axes shifted by eye_x)."""
    pose = torch.eye(4)[None].clone()
    pose[0, 0, 3] = eye_x
    return torch.full((1, height, width), 5.0), intrinsics_from_fov(torch.tensor([90.0]), height, width), pose


def test_overlap_of_identical_views_is_one_and_of_shifted_views_half():
    depth, K, pose = _plane_view(0.0)
    assert overlap(depth, K, pose, depth, K, pose).item() == 1.0
    # f = 20 px, depth 5: a shift of 5 m moves the plane by exactly 20 px, half of the 40 px width.
    depth2, K2, pose2 = _plane_view(5.0)
    assert overlap(depth, K, pose, depth2, K2, pose2).item() == pytest.approx(0.5)
    # Views that do not share any pixel.
    depth3, K3, pose3 = _plane_view(50.0)
    assert overlap(depth, K, pose, depth3, K3, pose3).item() == 0.0


def test_overlap_depth_test_hides_occluded_pixels():
    depth, K, pose = _plane_view(0.0)
    blocked = depth.clone()
    blocked[:, :, :10] = 2.0  # something in front of the plane over the left quarter of view 2
    # Columns 0-8 are hidden; column 9 borders the plane (3x3 depth range test), so 31 of 40 columns count.
    assert overlap(depth, K, pose, blocked, K, pose).item() == pytest.approx(31 / 40)
    depth_sky = depth.clone()
    depth_sky[:, :10] = 0  # sky in view 1's top half does not count at all
    assert overlap(depth_sky, K, pose, depth, K, pose).item() == 1.0
