"""Classical baselines: the essential-matrix pose against exact projections, SIFT matches on a shifted texture."""

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pointmap.eval.baselines import SiftConfig, essential_pose, sift_matches
from pointmap.eval.metrics import rotation_angle_deg, translation_angle_deg


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
