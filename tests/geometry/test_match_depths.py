"""Depth maps bent onto triangulated matches: a smooth distortion of the network's depths is undone everywhere."""

import torch
from two_view_scene import exact_matches, make_two_view_scene

from pointmap.align.match_depths import DepthFitConfig, correct_depths, triangulate_matches
from pointmap.align.scene import Scene
from pointmap.geometry.cameras import pixel_grid


def distorted_scene(truth, distortions: list[torch.Tensor]) -> Scene:
    """The two-view scene with exact cameras and each true depth map times its distortion field."""
    depths = [(truth.depth1 * distortions[0]).float(), (truth.depth2 * distortions[1]).float()]
    height, width = depths[0].shape
    return Scene(
        poses=torch.stack([torch.eye(4, dtype=torch.float64), truth.cam2_to_cam1]).float(),
        intrinsics=torch.stack([truth.K1, truth.K2]).float(),
        depths=depths,
        points=[torch.zeros(height, width, 3) for _ in depths],
        confidences=[torch.ones(height, width) for _ in depths],
        masks=[torch.ones(height, width, dtype=torch.bool) for _ in depths],
    )


def test_exact_matches_triangulate_to_the_true_depths():
    truth = make_two_view_scene()
    xy1, xy2 = exact_matches(truth)
    scene = distorted_scene(truth, [torch.ones(1), torch.ones(1)])
    (found,) = triangulate_matches({(0, 1): (xy1, xy2)}, scene.poses, scene.intrinsics, DepthFitConfig())
    assert len(found.depth[0]) > 0.9 * len(xy1)
    pixels = torch.from_numpy(found.xy[0]).round().long()
    true_depth = truth.depth1[pixels[:, 1], pixels[:, 0]].numpy()
    assert abs(found.depth[0] / true_depth - 1).max() < 1e-3


def test_a_smooth_distortion_of_each_view_is_undone_between_the_matches():
    """View 1's depths 20 % too deep on the left, fading to the right; view 2's 15 % too shallow at the top and
    compressed (depth^0.9): after the fit both are within 3 % of the truth at every pixel (0.5 % at the median),
    not only the matched ones (every third pixel here), and the world points follow the depths."""
    truth = make_two_view_scene()
    height, width = truth.depth1.shape
    xy = pixel_grid(height, width, dtype=torch.float64)
    left_deep = torch.exp(0.2 * (1 - xy[..., 0] / (width - 1)))
    top_shallow = torch.exp(-0.15 * (1 - xy[..., 1] / (height - 1))) * truth.depth2 ** -0.1
    scene = distorted_scene(truth, [left_deep, top_shallow])
    truths = [truth.depth1, truth.depth2]
    before = [(depth / true - 1).abs().max() for depth, true in zip(scene.depths, truths, strict=True)]
    fixed = correct_depths(scene, {(0, 1): exact_matches(truth)})
    for depth, true, error_before in zip(fixed.depths, truths, before, strict=True):
        error = (depth / true - 1).abs()
        assert error_before > 0.1 and error.median() < 0.005 and error.max() < 0.03
    assert torch.allclose(fixed.points[0], truth.pts1_in_1.float(), rtol=0.02, atol=1e-3)


def test_views_without_enough_matches_keep_their_depths():
    truth = make_two_view_scene()
    scene = distorted_scene(truth, [torch.full((1,), 1.3), torch.full((1,), 0.8)])
    xy1, xy2 = exact_matches(truth)
    few = {(0, 1): (xy1[:10], xy2[:10])}
    fixed = correct_depths(scene, few, DepthFitConfig(min_matches=30))
    assert all(torch.equal(a, b) for a, b in zip(fixed.depths, scene.depths, strict=True))
