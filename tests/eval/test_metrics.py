"""Metrics against hand-computed values."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pointmap.eval.metrics import (
    accuracy_at,
    align_depth,
    all_pairs,
    depth_metrics,
    mean_average_accuracy,
    pairwise_pose_errors,
    point_cloud_metrics,
    pose_auc,
    rotation_angle_deg,
    translation_angle_deg,
    turn_ratios,
)


def rot_z(deg: float) -> np.ndarray:
    return Rotation.from_euler("z", deg, degrees=True).as_matrix()


def test_rotation_angle_of_known_rotations():
    assert rotation_angle_deg(rot_z(30), np.eye(3)) == pytest.approx(30)
    assert rotation_angle_deg(rot_z(170) @ rot_z(15), np.eye(3)) == pytest.approx(175)
    assert rotation_angle_deg(np.diag([-1.0, -1.0, 1.0]), np.eye(3)) == pytest.approx(180)
    # Near 0 the angle keeps its digits (acos of the trace would give ~1e-6 deg here).
    assert rotation_angle_deg(rot_z(1e-9), np.eye(3)) == pytest.approx(1e-9, rel=1e-4)
    assert np.isnan(rotation_angle_deg(np.full((3, 3), np.nan), np.eye(3)))


def test_turn_ratio_is_estimated_over_true_turn_for_pairs_that_turn():
    rot_x = Rotation.from_euler("x", 40, degrees=True).as_matrix()
    estimated = np.stack([rot_z(20), rot_z(-45), rot_x, rot_z(5), np.full((3, 3), np.nan)])
    true = np.stack([rot_z(40), rot_z(30), rot_z(40), rot_z(10), rot_z(30)])
    ratios = turn_ratios(estimated, true)
    # Half the turn; more than the turn in the other direction; the right amount about another axis.
    assert ratios[:3] == pytest.approx([0.5, 1.5, 1.0])
    # A 10 degree turn is under the 15 degree floor; a failed estimate has no ratio.
    assert np.isnan(ratios[3]) and np.isnan(ratios[4])
    assert turn_ratios(rot_z(5), rot_z(10), min_turn_deg=5.0) == pytest.approx(0.5)


def test_translation_angle_sign_and_degenerate_cases():
    assert translation_angle_deg([1, 0, 0], [1, 1, 0]) == pytest.approx(45)
    assert translation_angle_deg([5, 0, 0], [0, 0, 2]) == pytest.approx(90)
    assert translation_angle_deg([-1, 0, 0], [1, 0, 0]) == pytest.approx(0)
    assert translation_angle_deg([-1, 0, 0], [1, 0, 0], sign_ambiguous=False) == pytest.approx(180)
    assert translation_angle_deg([-1, -1, 0], [1, 0, 0]) == pytest.approx(45)
    assert np.isnan(translation_angle_deg([0, 0, 0], [1, 0, 0]))  # no direction: a failure
    assert translation_angle_deg([1, 0, 0], [0, 0, 0]) == 0  # no baseline to get wrong


def camera_ring(num: int) -> np.ndarray:
    poses = np.tile(np.eye(4), (num, 1, 1))
    for k in range(num):
        angle = 2 * math.pi * k / num
        poses[k, :3, :3] = Rotation.from_euler("y", -angle).as_matrix()
        poses[k, :3, 3] = [3 * math.sin(angle), 0.5 * k, 3 * math.cos(angle)]
    return poses


def test_pairwise_errors_ignore_world_frame_and_scale():
    gt = camera_ring(5)
    similarity = np.eye(4)
    similarity[:3, :3] = 2.5 * Rotation.from_rotvec([0.3, -1.0, 0.2]).as_matrix()
    similarity[:3, 3] = [4.0, -1.0, 7.0]
    est = similarity @ gt
    est[:, :3, :3] /= 2.5  # rotations stay rotations; centres carry the scale
    rot, trans = pairwise_pose_errors(est, gt)
    assert rot.shape == trans.shape == (10,)
    np.testing.assert_allclose(rot, 0, atol=1e-5)
    np.testing.assert_allclose(trans, 0, atol=1e-5)


def test_pairwise_errors_of_one_turned_camera():
    gt = camera_ring(4)
    est = gt.copy()
    est[2, :3, :3] = est[2, :3, :3] @ rot_z(12)  # camera 2 turns about its own axis; centres unchanged
    rot, trans = pairwise_pose_errors(est, gt)
    pairs = all_pairs(4)
    for (i, j), error in zip(pairs, rot, strict=True):
        assert error == pytest.approx(12 if 2 in (i, j) else 0, abs=1e-6)
    # Pairs (i, 2) keep camera 2's centre in camera i's frame: no translation error.
    for (_, j), error in zip(pairs, trans, strict=True):
        if j == 2:
            assert error == pytest.approx(0, abs=1e-6)
    lost = gt.copy()
    lost[1] = np.nan
    rot, _ = pairwise_pose_errors(lost, gt)
    assert np.isnan(rot).sum() == 3


def test_accuracy_and_maa_count_failures():
    assert accuracy_at([1.0, 5.0, np.nan, 20.0], 10) == 0.5
    assert accuracy_at([10.0], 10) == 0.0  # strictly below
    # max errors 0.5, 10.5, 40: below t for t = 1..10 -> 1/3; t = 11..30 -> 2/3.
    value = mean_average_accuracy([0.5, 10.5, 40.0], [0.0, 3.0, 0.0])
    assert value == pytest.approx((10 * (1 / 3) + 20 * (2 / 3)) / 30)
    assert mean_average_accuracy([30.0], [0.0]) == pytest.approx(1 / 30)  # the last bin is closed
    assert mean_average_accuracy([0.0, 0.0], [0.0, np.nan]) == pytest.approx(0.5)
    assert mean_average_accuracy([0.1] * 3, [0.2] * 3) == pytest.approx(1.0)


def test_pose_auc_by_trapezoids():
    # One error of 2 deg: recall goes 0 -> 1 over [0, 2], then stays 1: area 1 + 3 = 4 of 5.
    assert pose_auc([2.0], [5])[0] == pytest.approx(0.8)
    assert pose_auc([2.0, np.inf], [5])[0] == pytest.approx(0.4)  # a failure halves the curve
    assert pose_auc([2.0], [1])[0] == 0.0
    assert pose_auc([0.0, 0.0], [5, 10, 20]) == pytest.approx([1.0, 1.0, 1.0])
    # errors 1 and 3: area under (0,0)-(1,.5)-(3,1)-(10,1) = .25 + 1.5 + 7 = 8.75 of 10.
    assert pose_auc([3.0, 1.0], [10])[0] == pytest.approx(0.875)


def test_depth_metrics_with_median_scaling():
    gt = np.array([[1.0, 2.0], [3.0, 4.0]])
    perfect = depth_metrics(7 * gt, gt)
    assert perfect == {"abs_rel": 0.0, "delta_1.25": 1.0, "tau_1.03": 1.0}
    # pred [0.5, 1, 1.5, 4]: median 1.25 vs 2.5 -> scale 2 -> [1, 2, 3, 8]; one pixel off by 100 %.
    values = depth_metrics(np.array([[0.5, 1.0], [1.5, 4.0]]), gt)
    assert values["abs_rel"] == pytest.approx(0.25)
    assert values["delta_1.25"] == pytest.approx(0.75)
    assert values["tau_1.03"] == pytest.approx(0.75)
    # 4 % off passes delta (1.25) but fails tau (1.03).
    near = depth_metrics(gt * np.array([[1.0, 1.0], [1.0, 1.04]]), gt, align="none")
    assert near["delta_1.25"] == 1.0 and near["tau_1.03"] == pytest.approx(0.75)
    assert near["abs_rel"] == pytest.approx(0.01)


def test_depth_metrics_masks_alignment_and_failure():
    gt = np.array([1.0, 2.0, 0.0, 4.0, 50.0])
    pred = np.array([2.0, 4.0, 123.0, 8.0, np.nan])  # gt 0 is unknown, NaN is outside the prediction
    assert depth_metrics(pred, gt)["abs_rel"] == pytest.approx(0.0)
    assert depth_metrics(2 * gt, gt, max_depth=10)["delta_1.25"] == 1.0
    affine = 3 * gt[[0, 1, 3]] + 1
    assert depth_metrics(affine, gt[[0, 1, 3]], align="scale_shift")["abs_rel"] == pytest.approx(0, abs=1e-12)
    assert depth_metrics(affine, gt[[0, 1, 3]], align="median")["abs_rel"] > 0.01
    assert depth_metrics(None, gt) == {"abs_rel": math.inf, "delta_1.25": 0.0, "tau_1.03": 0.0}
    assert math.isnan(depth_metrics(gt, np.zeros(5))["abs_rel"])
    np.testing.assert_allclose(align_depth([1.0, 2.0], [2.0, 4.0], mode="none"), [1.0, 2.0])
    with pytest.raises(ValueError, match="alignment"):
        align_depth(gt, gt, mode="mean")
    with pytest.raises(ValueError, match="resize"):
        depth_metrics(np.ones(3), gt)


def test_point_cloud_metrics_offsets_and_outlier_bound():
    grid = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0), [0.0], indexing="ij"), -1).reshape(-1, 3)
    shifted = grid + [0.1, 0.0, 0.0]
    values = point_cloud_metrics(shifted, grid)
    assert values["accuracy"] == pytest.approx(0.1)
    assert values["completeness"] == pytest.approx(0.1)
    assert values["chamfer"] == pytest.approx(0.1)
    with_outlier = np.concatenate([shifted, [[0.0, 0.0, 5.0]]])
    values = point_cloud_metrics(with_outlier, grid)
    assert values["accuracy"] == pytest.approx((16 * 0.1 + 5) / 17)
    assert values["accuracy_median"] == pytest.approx(0.1)
    assert point_cloud_metrics(with_outlier, grid, max_dist=1.0)["accuracy"] == pytest.approx(0.1)
    # Half the ground truth missing from the prediction: completeness sees it, accuracy does not.
    half = grid[grid[:, 0] < 2]
    values = point_cloud_metrics(half, grid)
    assert values["accuracy"] == 0.0
    assert values["completeness"] == pytest.approx((8 * 0 + 4 * 1 + 4 * 2) / 16)
    assert point_cloud_metrics(np.zeros((0, 3)), grid)["chamfer"] == math.inf
    # Completeness on a subset of the ground truth (DTU: above the ground plane), accuracy on all of it.
    values = point_cloud_metrics(half, grid, gt_complete=grid[grid[:, 0] < 1])
    assert values["completeness"] == 0.0 and values["accuracy"] == 0.0
