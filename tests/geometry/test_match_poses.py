"""Relative poses from feature matches: exact matches of a known two-view scene re-pose a wrong prediction."""

import math

import torch
from two_view_scene import exact_matches, make_two_view_scene, rotation_about

from pointmap.align.match_poses import MatchPoseConfig, repose_with_matches, restore_network_edges
from pointmap.geometry.cameras import invert_pose, transform_points
from pointmap.inference import PairPredictions

HEIGHT, WIDTH = 96, 128


def predictions(scene, turn_deg: float) -> PairPredictions:
    """Both edges of the pair, each view's own pointmap right (view 2's at half scale in the (2, 1) edge),
    but each view placed in the other's frame with a relative rotation of only `turn_deg` (the true 12)."""
    wrong = scene.cam2_to_cam1.clone()
    wrong[:3, :3] = rotation_about((0.1, -1.0, 0.05), turn_deg)
    own_1, own_2 = scene.pts1_in_1.float(), 0.5 * scene.pts2_in_2.float()
    pts_2_in_1 = transform_points(wrong[None], scene.pts2_in_2[None])[0].float()
    pts_1_in_2 = 0.5 * transform_points(invert_pose(wrong[None]), scene.pts1_in_1[None])[0].float()
    ones = torch.full((HEIGHT, WIDTH), 2.0)
    return PairPredictions(
        edges=[(0, 1), (1, 0)],
        pts_i=torch.stack([own_1, own_2]),
        pts_j=torch.stack([pts_2_in_1, pts_1_in_2]),
        conf_i=torch.stack([ones, ones]),
        conf_j=torch.stack([ones, ones]),
    )


def median_relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((estimate.double() - truth).norm(dim=-1) / truth.norm(dim=-1)).median())


def test_matches_re_pose_an_under_rotated_pair():
    scene = make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)
    xy1, xy2 = exact_matches(scene)
    assert len(xy1) > 300
    preds = predictions(scene, turn_deg=6.0)
    before = median_relative_error(preds.pts_j[0], scene.pts2_in_1)
    fixed, report = repose_with_matches(preds, {(0, 1): (xy1, xy2)})
    assert report[0].used and report[0].inliers > 0.95 * len(xy1)
    assert abs(report[0].turn_change_deg - 6.0) < 0.2
    # Edge (1, 2) in view 1's units; edge (2, 1) in view 2's (half scale).
    assert before > 0.05
    assert median_relative_error(fixed.pts_j[0], scene.pts2_in_1) < 0.005
    pts1_in_2 = transform_points(invert_pose(scene.cam2_to_cam1[None]), scene.pts1_in_1[None])[0]
    assert median_relative_error(fixed.pts_j[1], 0.5 * pts1_in_2) < 0.005
    # The first views' pointmaps are the network's; the second views' confidences are their own-frame ones.
    assert torch.equal(fixed.pts_i, preds.pts_i)
    assert torch.equal(fixed.conf_j[0], preds.conf_i[1])


def test_pairs_with_few_matches_keep_the_network_pose():
    scene = make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)
    xy1, xy2 = exact_matches(scene)
    preds = predictions(scene, turn_deg=6.0)
    fixed, report = repose_with_matches(preds, {(0, 1): (xy1[:40], xy2[:40])}, MatchPoseConfig(min_inliers=50))
    assert not report[0].used and report[0].inliers <= 40 and math.isnan(report[0].turn_change_deg)
    assert torch.equal(fixed.pts_j, preds.pts_j) and torch.equal(fixed.conf_j, preds.conf_j)


def test_a_pair_without_its_reverse_edge_is_left_alone():
    scene = make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)
    xy1, xy2 = exact_matches(scene)
    both = predictions(scene, turn_deg=6.0)
    one = PairPredictions([(0, 1)], both.pts_i[:1], both.pts_j[:1], both.conf_i[:1], both.conf_j[:1])
    fixed, report = repose_with_matches(one, {(0, 1): (xy1, xy2)})
    assert report == [] and torch.equal(fixed.pts_j, one.pts_j)


def test_known_intrinsics_replace_a_wrong_focal():
    """View 2's own pointmap stretched sideways implies a focal 25 % short; its true K keeps the pose right."""
    scene = make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)
    xy1, xy2 = exact_matches(scene)
    preds = predictions(scene, turn_deg=6.0)
    stretched = preds.pts_i.clone()
    stretched[1, ..., :2] *= 4 / 3
    preds = PairPredictions(preds.edges, stretched, preds.pts_j, preds.conf_i, preds.conf_j)
    guessed, _ = repose_with_matches(preds, {(0, 1): (xy1, xy2)})
    known = torch.stack([scene.K1, scene.K2]).float()
    given, _ = repose_with_matches(preds, {(0, 1): (xy1, xy2)}, intrinsics=known)
    # View 1 carried into camera 2 (its own pointmap is right, and the stretch leaves view 2's depths alone).
    truth = 0.5 * transform_points(invert_pose(scene.cam2_to_cam1[None]), scene.pts1_in_1[None])[0]
    assert median_relative_error(given.pts_j[1], truth) < 0.005
    assert median_relative_error(guessed.pts_j[1], truth) > 0.02


def test_matches_the_network_contradicts_keep_its_pose():
    """View 2's matched pixels turned half a turn about its principal point fit a pose rolled 180 deg from the true
    one with every match an inlier, as two walls papered alike fit a wrong pose; the network, right here, turns
    the pair the other way and puts the matched pixels on different surfaces."""
    scene = make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)
    xy1, xy2 = exact_matches(scene)
    rolled = torch.tensor([WIDTH, HEIGHT]) - xy2
    preds = predictions(scene, turn_deg=12.0)  # the network's pose is the true one
    fixed, report = repose_with_matches(preds, {(0, 1): (xy1, rolled)})
    assert report[0].inliers > 0.95 * len(xy1)
    assert report[0].contradicted and not report[0].used
    assert abs(report[0].turn_change_deg - 180.0) < 1.0
    assert torch.equal(fixed.pts_j, preds.pts_j) and torch.equal(fixed.conf_j, preds.conf_j)
    # The 3D test alone (the turn's limit off): the network's points of the matched pixels lie far apart,
    # where the true matches' coincide.
    turn_off = MatchPoseConfig(max_turn_change_deg=float("inf"), max_disagreement=0.5)
    _, report = repose_with_matches(preds, {(0, 1): (xy1, rolled)}, turn_off)
    assert report[0].contradicted and report[0].disagreement > 0.5
    _, report = repose_with_matches(preds, {(0, 1): (xy1, xy2)}, turn_off)
    assert report[0].used and not report[0].contradicted and report[0].disagreement < 0.01


def test_restored_pairs_get_both_network_edges_back():
    """A pair the bundle adjustment leaves out goes back to the network's second views, both directions; the
    other pairs keep their re-posed ones, and every first view stays."""
    edges = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
    generator = torch.Generator().manual_seed(0)

    def draw(*shape):
        return torch.randn(len(edges), *shape, generator=generator)

    network = PairPredictions(edges, draw(4, 5, 3), draw(4, 5, 3), draw(4, 5).exp() + 1, draw(4, 5).exp() + 1)
    reposed = PairPredictions(edges, network.pts_i, draw(4, 5, 3), network.conf_i, draw(4, 5).exp() + 1)
    restored = restore_network_edges(reposed, network, [(0, 2)])
    for edge, (i, j) in enumerate(edges):
        source = network if {i, j} == {0, 2} else reposed
        assert torch.equal(restored.pts_j[edge], source.pts_j[edge])
        assert torch.equal(restored.conf_j[edge], source.conf_j[edge])
    assert restored.pts_i is network.pts_i and restored.edges == edges
