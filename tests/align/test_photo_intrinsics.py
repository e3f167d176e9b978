"""Intrinsics of photos whose processed pixels are not square (the 224 rule), and the principal point
default: known ones come back as given, estimated ones are those of a square-pixel photo centred on its axis."""

import numpy as np
import pytest
import torch

from pointmap.align import AlignConfig, global_align
from pointmap.align.simulate import PredictionNoise, circle_cameras, simulate_predictions, smooth_depths
from pointmap.images import View

FAST = AlignConfig(subsample=4, verbose=False, iterations=60)
HEIGHT, WIDTH = 24, 32  # processed
# A 70 x 50 photo under the 224 rule scaled to a 24-pixel short side: resized to 34 x 24 (x by 70 / 34,
# y by 50 / 24), then columns 1..32 kept. Pixel centres at integers: x_orig = sx (x + left + 0.5) - 0.5.
ORIGINAL_SHAPE = (50, 70)
SX, SY, LEFT = 70 / 34, 50 / 24, 1
TO_ORIGINAL = np.array([[SX, 0, SX * (LEFT + 0.5) - 0.5], [0, SY, SY * 0.5 - 0.5], [0, 0, 1]])
PHOTO_FOCAL = 60.0


def photo_intrinsics(focal: float) -> np.ndarray:
    """(3, 3) square-pixel K of the 70 x 50 photo, principal point at its centre (34.5, 24.5)."""
    return np.array([[focal, 0, 34.5], [0, focal, 24.5], [0, 0, 1]])


def views(n: int) -> list[View]:
    return [
        View(torch.zeros(3, HEIGHT, WIDTH), (HEIGHT, WIDTH), f"photo_{k}.jpg", TO_ORIGINAL.copy(), ORIGINAL_SHAPE)
        for k in range(n)
    ]


def simulated(n: int, seed: int, photo_K: np.ndarray):
    """Predictions of n cameras whose processed K is inv(TO_ORIGINAL) @ photo_K (fx != fy)."""
    gen = torch.Generator().manual_seed(seed)
    K = torch.tensor(np.linalg.inv(TO_ORIGINAL) @ photo_K, dtype=torch.float32).expand(n, 3, 3)
    poses = circle_cameras(n, generator=gen)
    depths = smooth_depths(n, HEIGHT, WIDTH, generator=gen)
    edges = [(i, j) for i in range(n) for j in range(n) if i != j]
    return simulate_predictions(poses, K, depths, edges, PredictionNoise(scale_spread=0.3), gen), K


def test_processed_pixels_of_the_test_photo_are_not_square():
    # fy / fx = sx / sy = (70 / 34) / (50 / 24) = 0.98824: the case the aligner must not average away.
    K = np.linalg.inv(TO_ORIGINAL) @ photo_intrinsics(PHOTO_FOCAL)
    assert K[1, 1] / K[0, 0] == pytest.approx(0.988235294, abs=1e-9)


def test_known_intrinsics_come_back_exactly_in_processed_and_original_pixels():
    preds, K = simulated(4, seed=1, photo_K=photo_intrinsics(PHOTO_FOCAL))
    scene = global_align(preds, FAST, known_intrinsics=K, views=views(4), iterations=10)
    torch.testing.assert_close(scene.intrinsics, K, rtol=1e-7, atol=0)
    expected = np.tile(photo_intrinsics(60.0), (4, 1, 1))
    np.testing.assert_allclose(scene.original_intrinsics().numpy(), expected, atol=1e-4)


def test_estimated_focal_keeps_photo_pixels_square_and_the_principal_point_at_the_photo_centre():
    preds, K = simulated(5, seed=2, photo_K=photo_intrinsics(PHOTO_FOCAL))
    scene = global_align(preds, FAST, views=views(5))
    # fy / fx is the views' sx / sy exactly; the focal itself is estimated (noise-free: to 0.1 %).
    torch.testing.assert_close(scene.intrinsics[:, 1, 1] / scene.intrinsics[:, 0, 0], K[:, 1, 1] / K[:, 0, 0])
    torch.testing.assert_close(scene.intrinsics[:, 0, 0], K[:, 0, 0], rtol=1e-3, atol=0)
    original = scene.original_intrinsics()
    np.testing.assert_allclose(original[:, 0, 0], original[:, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(original[:, 0, 0], 60.0, rtol=1e-3)
    # The default principal point: the photo's centre ((70 - 1) / 2, (50 - 1) / 2), in processed pixels
    # ((34.5 + 0.5) / sx - 0.5 - 1, (24.5 + 0.5) / sy - 0.5) = (15.5, 11.5).
    np.testing.assert_allclose(original[:, :2, 2], np.tile([34.5, 24.5], (5, 1)), atol=1e-4)
    np.testing.assert_allclose(scene.intrinsics[:, :2, 2], np.tile([15.5, 11.5], (5, 1)), atol=1e-5)


def test_known_focal_is_fx_and_fy_follows_the_resize():
    preds, K = simulated(4, seed=3, photo_K=photo_intrinsics(PHOTO_FOCAL))
    known = torch.tensor([float(K[0, 0, 0]), torch.nan, torch.nan, float(K[3, 0, 0])])
    scene = global_align(preds, FAST, known_focals=known, views=views(4), iterations=10)
    assert scene.intrinsics[0, 0, 0].item() == known[0].item()
    torch.testing.assert_close(scene.intrinsics[[0, 3], 1, 1], K[[0, 3], 1, 1], rtol=1e-6, atol=0)
    np.testing.assert_allclose(scene.original_intrinsics()[[0, 3], 1, 1], 60.0, atol=1e-4)


def test_without_views_the_principal_point_is_the_image_centre():
    gen = torch.Generator().manual_seed(4)
    K = torch.tensor([[28.0, 0, 15.5], [0, 28.0, 11.5], [0, 0, 1]]).expand(3, 3, 3)
    poses = circle_cameras(3, generator=gen)
    depths = smooth_depths(3, HEIGHT, WIDTH, generator=gen)
    edges = [(i, j) for i in range(3) for j in range(3) if i != j]
    preds = simulate_predictions(poses, K, depths, edges, PredictionNoise(scale_spread=0.3), gen)
    scene = global_align(preds, FAST)
    # ((32 - 1) / 2, (24 - 1) / 2), not DUSt3R's (16, 12); fy = fx.
    np.testing.assert_array_equal(scene.intrinsics[:, :2, 2].numpy(), np.tile([15.5, 11.5], (3, 1)))
    assert torch.equal(scene.intrinsics[:, 0, 0], scene.intrinsics[:, 1, 1])
    torch.testing.assert_close(scene.intrinsics[:, 0, 0], K[:, 0, 0], rtol=1e-3, atol=0)


def test_focal_limits_are_fields_of_view_of_1_and_170_degrees():
    from pointmap.align.optimize import focal_limits

    limits = focal_limits([(224, 224), (384, 512)], torch.device("cpu"))
    tangents = np.tan(np.radians([85, 0.5]))
    np.testing.assert_allclose(limits.numpy(), [112 / tangents, 256 / tangents], rtol=1e-12)
    assert limits[0].tolist() == pytest.approx([9.7988, 12833.9288], abs=1e-4)


def test_mirrored_pointmaps_give_a_warning_and_finite_positive_focals():
    # x flipped: every own-frame pointmap is seen by a negative focal, what an untrained network gives.
    preds, _ = simulated(3, seed=5, photo_K=photo_intrinsics(PHOTO_FOCAL))
    preds.pts_i[..., 0] *= -1
    preds.pts_j[..., 0] *= -1
    with pytest.warns(UserWarning, match=r"images \[0, 1, 2\]: their own pointmaps give no positive focal"):
        scene = global_align(preds, FAST, views=views(3), iterations=10)
    focal = scene.intrinsics[:, 0, 0]
    # Between the 170- and 1-degree fields of view of a 32-pixel-wide image.
    assert torch.isfinite(focal).all() and (focal >= 16 / np.tan(np.radians(85)) * (1 - 1e-6)).all()
    assert (focal <= 16 / np.tan(np.radians(0.5)) * (1 + 1e-6)).all()
