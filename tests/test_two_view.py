import numpy as np
import pytest
import torch

from geometry.two_view_scene import (
    angle_between_deg,
    corrupt,
    exact_matches,
    make_two_view_scene,
    noisy_depth_points,
    rotation_about,
    rotation_error_deg,
)
from pointmap.geometry.cameras import invert_pose, project_points, transform_points
from pointmap.images import View
from pointmap.model.config import ModelConfig
from pointmap.model.network import EncodedImage, PairOutput
from pointmap.photo_focal import TYPICAL_FOCAL_RATIO
from pointmap.two_view import analyze_pair, monocular_depth

HEIGHT, WIDTH = 96, 128
FOCAL1, FOCAL2 = 116.0, 132.0


class OracleModel(torch.nn.Module):
    """Stands in for DUSt3R: returns given pointmaps for each pair of view ids.

    A view's id is written in its pixels (img = id / 10); `answers[(a, b)]` = (pts_a_in_a, pts_b_in_a).
    """

    def __init__(self, answers: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]], conf: float = 5.0):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device
        self.answers, self.conf = answers, conf
        self.config = ModelConfig()  # its min_conf (3) is the default threshold of analyze_pair

    def encode(self, img):
        return EncodedImage(img[:, :1, :1, 0], img.shape[-2], img.shape[-1])  # (B, 1, 1) ids

    def decode(self, enc1, enc2):
        ids1 = (enc1.tokens.flatten() * 10).round().long().tolist()
        ids2 = (enc2.tokens.flatten() * 10).round().long().tolist()
        pts1 = torch.stack([self.answers[(a, b)][0] for a, b in zip(ids1, ids2, strict=True)]).float()
        pts2 = torch.stack([self.answers[(a, b)][1] for a, b in zip(ids1, ids2, strict=True)]).float()
        return PairOutput(pts1, torch.full(pts1.shape[:-1], self.conf), pts2, torch.full(pts2.shape[:-1], self.conf))


def view(index: int) -> View:
    return View(torch.full((3, HEIGHT, WIDTH), index / 10), (HEIGHT, WIDTH), f"{index}.png", np.eye(3), (HEIGHT, WIDTH))


@pytest.fixture(scope="module")
def scene():
    return make_two_view_scene(HEIGHT, WIDTH, FOCAL1, FOCAL2)


def oracle_answers(scene, generator=None):
    """Both directions; the (2, 1) prediction at 0.7 times the scale. Noisy when a generator is given."""
    cam1_to_cam2 = invert_pose(scene.cam2_to_cam1[None])[0]
    if generator is None:
        pts1_in_2 = transform_points(cam1_to_cam2[None], scene.pts1_in_1[None])[0]
        return {(1, 2): (scene.pts1_in_1, scene.pts2_in_1), (2, 1): (0.7 * scene.pts2_in_2, 0.7 * pts1_in_2)}
    return {
        (1, 2): (
            noisy_depth_points(scene.depth1, scene.K1, generator),
            noisy_depth_points(scene.depth2, scene.K2, generator, scene.cam2_to_cam1),
        ),
        (2, 1): (
            0.7 * noisy_depth_points(scene.depth2, scene.K2, generator),
            0.7 * noisy_depth_points(scene.depth1, scene.K1, generator, cam1_to_cam2),
        ),
    }


@pytest.mark.parametrize("pose_method", ["pnp-both", "pnp", "procrustes"])
def test_analyze_pair_noise_free(scene, pose_method):
    result = analyze_pair(OracleModel(oracle_answers(scene)), view(1), view(2), pose_method=pose_method, subsample=4)
    torch.testing.assert_close(result.cam2_to_cam1.double(), scene.cam2_to_cam1, atol=1e-4, rtol=0)
    assert abs(result.focal1 / FOCAL1 - 1) < 1e-4 and abs(result.focal2 / FOCAL2 - 1) < 1e-4
    torch.testing.assert_close(result.depth1.double(), scene.depth1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.depth2.double(), scene.depth2, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(result.pts2.double(), scene.pts2_in_1, atol=1e-5, rtol=1e-5)
    assert result.conf1.shape == (HEIGHT, WIDTH) and float(result.conf2.min()) == 5.0
    # Matches: the true projection of each image-1 point into image 2 is within a pixel.
    assert len(result.matches1) > 500
    pts = scene.pts1_in_1[result.matches1[:, 1], result.matches1[:, 0]]
    in_2 = transform_points(invert_pose(scene.cam2_to_cam1[None]), pts[None])
    error = (project_points(in_2, scene.K2[None])[0] - result.matches2.double()).norm(dim=-1)
    assert float((error < 1.0).float().mean()) >= 0.99


@pytest.mark.parametrize("pose_method", ["pnp-both", "pnp", "procrustes"])
def test_analyze_pair_with_depth_noise_and_outliers(scene, pose_method):
    answers = oracle_answers(scene, torch.Generator().manual_seed(5))
    result = analyze_pair(OracleModel(answers), view(1), view(2), pose_method=pose_method)
    true = scene.cam2_to_cam1
    assert rotation_error_deg(result.cam2_to_cam1[:3, :3].double(), true[:3, :3]) < 0.1
    assert angle_between_deg(result.cam2_to_cam1[:3, 3].double(), true[:3, 3]) < 0.5
    assert abs(result.focal1 / FOCAL1 - 1) < 0.005 and abs(result.focal2 / FOCAL2 - 1) < 0.005
    assert result.cam2_to_cam1.dtype == torch.float32


def test_monocular_depth_and_focal(scene):
    # Harder than depth noise: 1 % of the depth as noise on every axis, and 5 % outliers.
    pts = corrupt(scene.pts1_in_1, torch.Generator().manual_seed(6))
    result = monocular_depth(OracleModel({(1, 1): (pts, pts)}), view(1))
    assert abs(result.focal / FOCAL1 - 1) < 0.005
    torch.testing.assert_close(result.depth, pts[..., 2].float())
    assert result.conf.shape == (HEIGHT, WIDTH) and result.pts3d.shape == (HEIGHT, WIDTH, 3)


def test_analyze_pair_rejects_unknown_pose_method(scene):
    with pytest.raises(ValueError, match="pose_method='ransac': pick 'pnp-both', 'pnp' or 'procrustes'"):
        analyze_pair(OracleModel(oracle_answers(scene)), view(1), view(2), pose_method="ransac")


@pytest.mark.parametrize("pose_method", ["pnp-both", "pnp"])
def test_pnp_failure_falls_back_to_procrustes(scene, monkeypatch, pose_method):
    def no_pose(*args, **kwargs):
        raise ValueError("PnP-RANSAC found no pose")

    monkeypatch.setattr("pointmap.two_view.pnp_ransac", no_pose)
    model = OracleModel(oracle_answers(scene))
    with pytest.warns(UserWarning, match="2.png: PnP-RANSAC found no pose; using pose_method='procrustes'"):
        result = analyze_pair(model, view(1), view(2), pose_method=pose_method)
    expected = analyze_pair(model, view(1), view(2), pose_method="procrustes")
    assert torch.equal(result.cam2_to_cam1, expected.cam2_to_cam1)


def test_pnp_both_averages_the_two_directions(scene, monkeypatch):
    # Each direction's PnP is off by 2 degrees about z, in opposite senses: the mean is the true pose.
    # Translation directions off by the same rotation average back onto the true one, up to the cos(2 deg)
    # shortening of their part across the z axis (0.006 deg here).
    true = scene.cam2_to_cam1.double()
    twist = torch.eye(4, dtype=torch.float64)
    angle = torch.tensor(2.0, dtype=torch.float64).deg2rad()
    twist[:2, :2] = torch.tensor([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]])
    first = twist @ true  # camera 2 -> camera 1, as the (1, 2) direction would find it
    second = invert_pose((twist.T @ true)[None])[0]  # camera 1 -> camera 2, as the (2, 1) direction would
    poses = iter([first, second])
    monkeypatch.setattr("pointmap.two_view.pnp_ransac", lambda *args, **kwargs: (next(poses), None))
    result = analyze_pair(OracleModel(oracle_answers(scene)), view(1), view(2), pose_method="pnp-both")
    assert rotation_error_deg(result.cam2_to_cam1[:3, :3].double(), true[:3, :3]) < 1e-3
    assert angle_between_deg(result.cam2_to_cam1[:3, 3].double(), true[:3, 3]) < 0.01
    assert torch.isclose(result.cam2_to_cam1[:3, 3].double().norm(), true[:3, 3].norm(), rtol=1e-5)


def test_depth2_comes_from_view_2s_own_prediction_at_the_pair_scale(scene):
    # The (2, 1) prediction's own pointmap of view 2 (at 0.7 times the scale) carries a bump of +10 % depth
    # that the (1, 2) prediction's cross-view points lack: depth2 follows the own prediction, at scale 1.
    answers = oracle_answers(scene)
    own, pts1_in_2 = answers[(2, 1)]
    bump = torch.ones(HEIGHT, WIDTH, 1, dtype=own.dtype)
    bump[:8, :8] = 1.1
    answers[(2, 1)] = (own * bump, pts1_in_2)
    result = analyze_pair(OracleModel(answers), view(1), view(2), subsample=4)
    torch.testing.assert_close(result.depth2.double(), scene.depth2 * bump[..., 0].double(), atol=1e-4, rtol=1e-4)


def test_feature_matches_correct_an_under_rotated_pair(monkeypatch):
    """The network turns view 2 by 6 of the true 12 deg; the photos' matches (exact ones here, in place of
    XFeat's) give analyze_pair the true pose at the (1, 2) prediction's scale; without a matcher it keeps the
    network's. The photos' focal is their likely one (`photo_focal`): a turn of 12 deg leaves the focal loosely
    held by the matches (found 2 % off; a focal found from one pair's matches: tests/align/test_bundle.py)."""
    import pointmap.features

    focal = TYPICAL_FOCAL_RATIO * WIDTH  # one camera: images of one size share a focal in the bundle adjustment
    scene = make_two_view_scene(HEIGHT, WIDTH, focal, focal)
    xy1, xy2 = exact_matches(scene)
    monkeypatch.setattr(pointmap.features, "match_views", lambda views, pairs, verbose=True: {(0, 1): (xy1, xy2)})
    wrong = scene.cam2_to_cam1.clone()
    wrong[:3, :3] = rotation_about((0.1, -1.0, 0.05), 6.0)
    own1, own2 = scene.pts1_in_1, scene.pts2_in_2
    answers = {
        (1, 2): (own1, transform_points(wrong[None], own2[None])[0]),
        (2, 1): (own2, transform_points(invert_pose(wrong[None]), own1[None])[0]),
    }
    model = OracleModel(answers)
    true = scene.cam2_to_cam1
    network_only = analyze_pair(model, view(1), view(2), matcher=None)
    matched = analyze_pair(model, view(1), view(2))
    assert rotation_error_deg(network_only.cam2_to_cam1[:3, :3].double(), true[:3, :3]) > 5
    assert rotation_error_deg(matched.cam2_to_cam1[:3, :3].double(), true[:3, :3]) < 0.3  # 0.23 deg
    assert angle_between_deg(matched.cam2_to_cam1[:3, 3].double(), true[:3, 3]) < 1.0
    assert matched.cam2_to_cam1[:3, 3].double().norm() == pytest.approx(float(true[:3, 3].norm()), rel=0.05)  # 3 %
    assert matched.focal1 == pytest.approx(focal, rel=0.03) and matched.focal2 == matched.focal1  # 113.0 px
