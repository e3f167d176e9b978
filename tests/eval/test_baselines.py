"""Classical baselines: the essential-matrix pose against exact projections, SIFT matches on a shifted texture."""

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pointmap.data.sample import ViewSample
from pointmap.eval.baselines import ColmapPairs, SiftConfig, colmap_poses, essential_pose, sift_matches
from pointmap.eval.metrics import pairwise_pose_errors, rotation_angle_deg, translation_angle_deg


def project(points_world: np.ndarray, cam2world: np.ndarray, K: np.ndarray) -> np.ndarray:
    world2cam = np.linalg.inv(cam2world)
    cam = points_world @ world2cam[:3, :3].T + world2cam[:3, 3]
    uv = cam @ K.T
    return uv[:, :2] / uv[:, 2:]


def test_essential_pose_recovers_camera_2_in_camera_1():
    rng = np.random.default_rng(0)
    points = rng.uniform([-2, -2, 4], [2, 2, 8], size=(200, 3))  # in front of camera 1 at the origin
    cam2_to_cam1 = np.eye(4)
    cam2_to_cam1[:3, :3] = Rotation.from_euler("yx", [-12, 4], degrees=True).as_matrix()
    cam2_to_cam1[:3, 3] = [0.8, 0.1, 0.2]
    K1 = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    K2 = np.array([[420.0, 0, 150], [0, 420.0, 130], [0, 0, 1]])
    pts1, pts2 = project(points, np.eye(4), K1), project(points, cam2_to_cam1, K2)
    estimate = essential_pose(pts1, pts2, K1, K2, SiftConfig())
    assert rotation_angle_deg(estimate[:3, :3], cam2_to_cam1[:3, :3]) < 0.05
    # The centre of camera 2 in camera 1's frame, with the sign: the cheirality check fixes it.
    assert translation_angle_deg(estimate[:3, 3], cam2_to_cam1[:3, 3], sign_ambiguous=False) < 0.05
    assert np.linalg.norm(estimate[:3, 3]) == pytest.approx(1.0)
    assert essential_pose(pts1[:4], pts2[:4], K1, K2, SiftConfig()) is None  # fewer than five matches


def test_sift_matches_follow_a_shift():
    rng = np.random.default_rng(1)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (200, 260)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    gray1, gray2 = texture[:, :240], texture[:, 12:252]  # image 2 sees the texture 12 px further right
    pts1, pts2 = sift_matches(gray1, gray2, SiftConfig())
    assert len(pts1) > 30
    shift = pts1 - pts2
    assert np.median(shift[:, 0]) == pytest.approx(12, abs=0.1) and np.median(shift[:, 1]) == pytest.approx(0, abs=0.1)
    empty1, _ = sift_matches(np.zeros((64, 64), np.uint8), gray2, SiftConfig())
    assert empty1.shape == (0, 2)


@pytest.fixture(scope="module")
def sprite_views():
    """Three 480 x 640 views of 900 random points, each drawn as its own 11 x 11 random patch (far first):
    distinctive SIFT features at known 3D positions. Cameras 1 m apart, turning 8 degrees each."""
    rng = np.random.default_rng(0)
    points = rng.uniform([-2, -1.5, 4], [2, 1.5, 7], (900, 3))
    patches = rng.integers(0, 255, (900, 11, 11, 3), dtype=np.uint8)
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    images, poses = [], []
    for v in range(3):
        cam2world = np.eye(4)
        cam2world[:3, :3] = Rotation.from_euler("y", -8 * v, degrees=True).as_matrix()
        cam2world[:3, 3] = [1.0 * v, 0.1 * v, 0.0]
        world2cam = np.linalg.inv(cam2world)
        depth = (points @ world2cam[:3, :3].T + world2cam[:3, 3])[:, 2]
        pixels = np.round(project(points, cam2world, K)).astype(int)
        image = np.full((480, 640, 3), 40, np.uint8)
        for k in np.argsort(-depth):
            x, y = pixels[k]
            if 5 <= x < 635 and 5 <= y < 475:
                image[y - 5 : y + 6, x - 5 : x + 6] = patches[k]
        images.append(image)
        poses.append(cam2world)
    return images, np.stack(poses), K


def test_colmap_poses_follow_opencv_cam2world(sprite_views):
    images, poses, _ = sprite_views
    estimate = colmap_poses(images)
    assert not np.isnan(estimate).any()  # every image registered
    rot, trans = pairwise_pose_errors(estimate, poses, sign_ambiguous=False)
    assert rot.max() < 2.0 and trans.max() < 6.0  # sprites sit a pixel off their points; COLMAP fits the focal
    assert np.isnan(colmap_poses([np.zeros((64, 64, 3), np.uint8)] * 2)).all()  # nothing to match: all lost


def test_colmap_pairs_pose_camera_2_in_camera_1(sprite_views):
    images, poses, K = sprite_views

    def sample(k: int) -> ViewSample:
        image = torch.from_numpy(images[k]).permute(2, 0, 1).float() / 127.5 - 1
        return ViewSample(image=image, depth=torch.zeros(480, 640), valid=torch.zeros(480, 640, dtype=torch.bool),
                          intrinsics=torch.from_numpy(K).float(), cam2world=torch.from_numpy(poses[k]).float(),
                          source=f"sprites/{k}")

    estimate = ColmapPairs()(sample(0), sample(1))
    truth = np.linalg.inv(poses[0]) @ poses[1]
    # Two views pin the free focal less well than three; an inverted pose would be 16 deg off.
    assert rotation_angle_deg(estimate.cam2_to_cam1[:3, :3], truth[:3, :3]) < 4.0
    assert translation_angle_deg(estimate.cam2_to_cam1[:3, 3], truth[:3, 3], sign_ambiguous=False) < 8.0
    assert estimate.depth1 is None and estimate.seconds > 0
