import math

import pytest
import torch

from pointmap.align import AlignConfig, Scene, global_align
from pointmap.align.simulate import PredictionNoise, circle_cameras, simulate_predictions, smooth_depths
from pointmap.geometry.cameras import depth_to_points, image_centre, intrinsics_from_focal
from pointmap.geometry.procrustes import weighted_procrustes
from pointmap.inference import PairPredictions

HEIGHT, WIDTH = 24, 32
FAST = AlignConfig(subsample=4, verbose=False, iterations=60)


def complete(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(n) if i != j]


def centred_intrinsics(focal: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 3, 3) K with the principal point at the image centre, the aligner's default without views."""
    return intrinsics_from_focal(focal, height, width, image_centre(height, width).expand(len(focal), 2))


def ground_truth(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    poses = circle_cameras(n, generator=gen)
    focal = 0.7 * WIDTH + 4 * torch.rand(n, generator=gen)
    K = centred_intrinsics(focal, HEIGHT, WIDTH)
    depths = smooth_depths(n, HEIGHT, WIDTH, generator=gen)
    return poses, K, depths, gen


def relative_rotation_errors_deg(poses: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Angles between estimated and true R_i^T R_j over all pairs (asin form: exact near 0)."""
    est, ref = poses[:, :3, :3].double(), truth[:, :3, :3].double()
    diff = est.transpose(1, 2)[:, None] @ est[None] - ref.transpose(1, 2)[:, None] @ ref[None]
    return torch.rad2deg(2 * torch.asin((diff.flatten(2).norm(dim=-1) / (2 * math.sqrt(2))).clamp(max=1)))


def centres_up_to_similarity(poses: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Largest distance between true centres and estimated ones after the best similarity, over the spread."""
    est, ref = poses[None, :, :3, 3].double(), truth[None, :, :3, 3].double()
    s, R, t = weighted_procrustes(est, ref)
    moved = s[:, None, None] * est @ R.transpose(1, 2) + t[:, None]
    return (moved - ref).norm(dim=-1).max() / (ref - ref.mean(1)).norm(dim=-1).max()


def test_noise_free_predictions_give_exact_cameras_and_depths():
    poses, K, depths, gen = ground_truth(6)
    preds = simulate_predictions(poses, K, depths, complete(6), PredictionNoise(scale_spread=0.4), gen)
    scene = global_align(preds, FAST)
    assert relative_rotation_errors_deg(scene.poses, poses).max() < 0.05
    assert centres_up_to_similarity(scene.poses, poses) < 1e-4
    torch.testing.assert_close(scene.intrinsics[:, 0, 0], K[:, 0, 0], rtol=1e-3, atol=0)
    torch.testing.assert_close(scene.intrinsics[:, :2, 2], K[:, :2, 2])
    # Depths equal the truth up to one global scale.
    ratio = torch.stack(scene.depths) / depths
    assert (ratio / ratio.median() - 1).abs().max() < 1e-3
    # World points of each view sit where its camera and depth say.
    cam_pts = (scene.points[2].reshape(-1, 3) - scene.poses[2, :3, 3]) @ scene.poses[2, :3, :3]
    torch.testing.assert_close(cam_pts[:, 2], scene.depths[2].reshape(-1), rtol=1e-4, atol=1e-5)


def test_known_poses_are_kept_exactly_and_set_the_scale():
    poses, K, depths, gen = ground_truth(5, seed=1)
    preds = simulate_predictions(poses, K, depths, complete(5), PredictionNoise(scale_spread=0.4), gen)
    known = torch.full((5, 4, 4), torch.nan)
    known[[0, 3]] = poses[[0, 3]]
    scene = global_align(preds, FAST, known_poses=known)
    assert torch.equal(scene.poses[[0, 3]], poses[[0, 3]])
    # Two fixed centres fix the scale: the other cameras and the depths come out metric.
    torch.testing.assert_close(scene.poses[:, :3, 3], poses[:, :3, 3], atol=2e-3, rtol=0)
    torch.testing.assert_close(torch.stack(scene.depths), depths, rtol=2e-3, atol=0)


def test_single_known_pose_is_kept_exactly():
    poses, K, depths, gen = ground_truth(4, seed=13)
    preds = simulate_predictions(poses, K, depths, complete(4), PredictionNoise(scale_spread=0.4), gen)
    known = torch.full((4, 4, 4), torch.nan)
    known[2] = poses[2]
    scene = global_align(preds, FAST, known_poses=known)
    assert torch.equal(scene.poses[2], poses[2])
    assert relative_rotation_errors_deg(scene.poses, poses).max() < 0.05
    # One pose fixes the frame, not the scale.
    assert centres_up_to_similarity(scene.poses, poses) < 1e-4


def test_known_poses_as_initialisation_may_move():
    poses, K, depths, gen = ground_truth(4, seed=2)
    preds = simulate_predictions(poses, K, depths, complete(4), PredictionNoise(scale_spread=0.2), gen)
    wrong = poses.clone()
    wrong[1, :3, 3] += 0.05
    scene = global_align(preds, FAST, known_poses=wrong, fix_poses=False)
    assert centres_up_to_similarity(scene.poses, poses) < 1e-4
    # The result is returned in the frame and units of the known poses.
    torch.testing.assert_close(scene.poses[:, :3, 3], poses[:, :3, 3], atol=0.03, rtol=0)
    assert (scene.poses[1, :3, 3] - wrong[1, :3, 3]).norm() > 0.02


def test_known_focals_are_kept_exactly():
    poses, K, depths, gen = ground_truth(4, seed=3)
    preds = simulate_predictions(poses, K, depths, complete(4), PredictionNoise(scale_spread=0.2), gen)
    known = torch.tensor([25.0, torch.nan, 30.0, torch.nan])
    scene = global_align(preds, FAST, known_focals=known)
    assert scene.intrinsics[0, 0, 0].item() == 25.0 and scene.intrinsics[2, 1, 1].item() == 30.0
    torch.testing.assert_close(scene.intrinsics[[1, 3], 0, 0], K[[1, 3], 0, 0], rtol=0.02, atol=0)


def test_known_intrinsics_fix_focal_and_principal_point():
    poses, K, depths, gen = ground_truth(4, seed=4)
    preds = simulate_predictions(poses, K, depths, complete(4), PredictionNoise(scale_spread=0.2), gen)
    scene = global_align(preds, FAST, known_intrinsics=K, optimize_pp=True)
    assert torch.equal(scene.intrinsics, K)
    assert relative_rotation_errors_deg(scene.poses, poses).max() < 0.05


def test_principal_point_is_estimated_when_asked():
    poses, K, depths, gen = ground_truth(5, seed=5)
    K[:, 0, 2] += 1.5
    K[:, 1, 2] -= 1.0
    preds = simulate_predictions(poses, K, depths, complete(5), PredictionNoise(scale_spread=0.2), gen)
    scene = global_align(preds, FAST, optimize_pp=True, iterations=200)
    torch.testing.assert_close(scene.intrinsics[:, :2, 2], K[:, :2, 2], atol=0.05, rtol=0)
    torch.testing.assert_close(scene.intrinsics[:, 0, 0], K[:, 0, 0], rtol=3e-3, atol=0)


def test_masked_pixels_are_ignored():
    poses, K, depths, gen = ground_truth(4, seed=6)
    preds = simulate_predictions(poses, K, depths, complete(4), PredictionNoise(scale_spread=0.2), gen)
    # Garbage, confidently predicted, in the left quarter of image 1 everywhere it appears.
    for e, (i, j) in enumerate(preds.edges):
        if i == 1:
            preds.pts_i[e, :, :8] *= 3
            preds.conf_i[e, :, :8] = 50
        if j == 1:
            preds.pts_j[e, :, :8] += 1
            preds.conf_j[e, :, :8] = 50
    masks = [torch.ones(HEIGHT, WIDTH, dtype=torch.bool) for _ in range(4)]
    masks[1][:, :8] = False
    scene = global_align(preds, FAST, masks=masks)
    assert relative_rotation_errors_deg(scene.poses, poses).max() < 0.05
    assert not scene.masks[1][:, :8].any()


def test_noisy_predictions_stay_accurate():
    poses, K, depths, gen = ground_truth(8, seed=7)
    noise = PredictionNoise(scale_spread=0.5, depth_noise=0.01, warp=0.005, outliers=0.03)
    preds = simulate_predictions(poses, K, depths, complete(8), noise, gen)
    scene = global_align(preds, FAST)
    errors = relative_rotation_errors_deg(scene.poses, poses)
    assert errors.median() < 0.3 and errors.max() < 1.0
    assert ((scene.intrinsics[:, 0, 0] / K[:, 0, 0] - 1).abs() < 0.02).all()


def test_isolated_image_is_named():
    poses, K, depths, gen = ground_truth(4, seed=8)
    preds = simulate_predictions(poses, K, depths, [(0, 1), (1, 0), (2, 3), (3, 2)], None, gen)
    with pytest.raises(ValueError, match=r"into 2 groups \(components \[\[0, 1\], \[2, 3\]\]\)"):
        global_align(preds, FAST)
    lonely = simulate_predictions(poses, K, depths, [(0, 1), (1, 0), (0, 3), (3, 0)], None, gen)
    with pytest.raises(ValueError, match=r"isolated images \[2\]"):
        global_align(lonely, FAST)


def test_identical_images_give_coincident_finite_cameras():
    poses, K, depths, gen = ground_truth(1, seed=9)
    pts = depth_to_points(depths[:1], K[:1])[0]
    conf = torch.full((HEIGHT, WIDTH), 5.0)
    preds = PairPredictions(
        edges=[(0, 1), (1, 0)],
        pts_i=torch.stack([pts, pts]),
        pts_j=torch.stack([pts, pts]),
        conf_i=torch.stack([conf, conf]),
        conf_j=torch.stack([conf, conf]),
    )
    scene = global_align(preds, FAST)
    for field in (scene.poses, scene.intrinsics, *scene.depths, *scene.points):
        assert torch.isfinite(field).all()
    torch.testing.assert_close(scene.poses[0], scene.poses[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(scene.intrinsics[:, 0, 0], K[[0, 0], 0, 0], rtol=1e-3, atol=0)


def test_unknown_option_is_rejected():
    poses, K, depths, gen = ground_truth(2, seed=10)
    preds = simulate_predictions(poses, K, depths, complete(2), None, gen)
    with pytest.raises(TypeError, match="iteratons"):
        global_align(preds, FAST, iteratons=3)


def test_clean_masks_points_in_front_of_a_more_confident_view():
    K = intrinsics_from_focal(torch.tensor([20.0, 20.0]), 8, 8)
    poses = torch.eye(4).repeat(2, 1, 1)
    depth0 = torch.full((8, 8), 2.0)
    depth1 = torch.full((8, 8), 2.0)
    depth1[3, 5] = 1.0  # a floater: camera 0 sees through it to its wall at depth 2
    depth1[6, 1] = 3.0  # behind camera 0's wall: hidden, not inconsistent
    points = [depth_to_points(d[None], K[:1])[0] for d in (depth0, depth1)]
    conf = [torch.full((8, 8), 5.0), torch.full((8, 8), 2.0)]
    masks = [torch.ones(8, 8, dtype=torch.bool)] * 2
    scene = Scene(poses, K, [depth0, depth1], points, conf, masks).clean()
    assert scene.masks[0].all()
    assert (~scene.masks[1]).nonzero().tolist() == [[3, 5]]


def test_images_of_different_shapes():
    gen = torch.Generator().manual_seed(11)
    poses = circle_cameras(3, generator=gen)
    shapes = [(24, 32), (32, 24), (24, 32)]
    Ks = [centred_intrinsics(torch.tensor([26.0 + k]), h, w)[0] for k, (h, w) in enumerate(shapes)]
    depths = [smooth_depths(1, h, w, generator=gen) for h, w in shapes]
    own = [depth_to_points(depth, K[None])[0] for depth, K in zip(depths, Ks, strict=True)]
    edges = complete(3)
    pts_j = []
    for i, j in edges:
        j_to_i = torch.linalg.inv(poses[i]) @ poses[j]
        pts_j.append(own[j] @ j_to_i[:3, :3].T + j_to_i[:3, 3])
    preds = PairPredictions(
        edges=edges,
        pts_i=[own[i] for i, _ in edges],
        pts_j=pts_j,
        conf_i=[torch.full(shapes[i], 4.0) for i, _ in edges],
        conf_j=[torch.full(shapes[j], 4.0) for _, j in edges],
    )
    scene = global_align(preds, FAST)
    assert [tuple(d.shape) for d in scene.depths] == shapes
    assert relative_rotation_errors_deg(scene.poses, poses).max() < 0.05
    torch.testing.assert_close(scene.intrinsics[:, 0, 0], torch.tensor([26.0, 27.0, 28.0]), rtol=1e-3, atol=0)


def test_single_image_paired_with_itself_gives_its_depth_and_focal():
    poses, K, depths, gen = ground_truth(1, seed=12)
    preds = simulate_predictions(poses, K, depths, [(0, 0)], PredictionNoise(scale_spread=0.3), gen)
    scene = global_align(preds, FAST)
    torch.testing.assert_close(scene.intrinsics[0, 0, 0], K[0, 0, 0], rtol=1e-4, atol=0)
    ratio = scene.depths[0] / depths[0]
    assert (ratio / ratio.median() - 1).abs().max() < 1e-4
