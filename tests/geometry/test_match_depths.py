"""Depth maps bent onto triangulated matches: a smooth distortion of the network's depths is undone everywhere."""

import torch
from two_view_scene import TwoViewScene, exact_matches, make_two_view_scene, ray_depth, rotation_about

from pointmap.align.match_depths import DepthFitConfig, correct_depths, triangulate_matches
from pointmap.align.scene import Scene
from pointmap.geometry.cameras import invert_pose, pixel_grid, transform_points


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


def test_a_view_mostly_behind_its_camera_keeps_its_depths():
    """View 2 aligned behind its camera but for its left quarter (a failed alignment): it is left as it is, not
    bent by a correction fitted on that quarter; view 1 is still bent onto the matches."""
    truth = make_two_view_scene()
    height, width = truth.depth2.shape
    xy = pixel_grid(height, width, dtype=torch.float64)
    behind = torch.where(xy[..., 0] < width / 4, 1.0, -1.0).double()
    scene = distorted_scene(truth, [torch.full((1,), 1.3), behind])
    fixed = correct_depths(scene, {(0, 1): exact_matches(truth)})
    assert torch.equal(fixed.depths[1], scene.depths[1])
    assert ((fixed.depths[0] / truth.depth1 - 1).abs().median()) < 0.005


def test_a_pair_off_the_others_fit_is_left_out():
    """Three views of the two-view scene (a third camera 0.5 to the left); pair (1, 2)'s matches lie on the
    right epipolar lines but on a warped surface (view 2's depths up to twice too deep towards its right edge,
    as a pair with wrong cameras triangulates them). The other two pairs pin views 2 and 3: most of the pair's
    depths end 10 % or more off the fit, so it is left out and every view comes back within 1 %; kept
    (`max_pair_outliers=1`), it bends view 2's depths by 5 % and more."""
    truth = make_two_view_scene()
    height, width = truth.depth1.shape
    cam3_to_cam1 = torch.eye(4, dtype=torch.float64)
    cam3_to_cam1[:3, :3] = rotation_about((0.1, -1.0, 0.05), -10.0)
    cam3_to_cam1[:3, 3] = torch.tensor([-0.5, 0.05, 0.1], dtype=torch.float64)
    depth3 = ray_depth(truth.K1, cam3_to_cam1, height, width)
    pair_13 = TwoViewScene(truth.K1, truth.K1, cam3_to_cam1, truth.depth1, depth3, truth.pts1_in_1, None, None)
    cam3_to_cam2 = invert_pose(truth.cam2_to_cam1[None])[0] @ cam3_to_cam1
    xy = pixel_grid(height, width, dtype=torch.float64)  # (H, W, 2)
    warped = truth.pts2_in_2 * (1 + xy[..., :1] / (width - 1))  # (H, W, 3) in camera 2
    pixels_2 = xy[2:-2:3, 2:-2:3].reshape(-1, 2)
    seen_3 = transform_points(invert_pose(cam3_to_cam2[None]), warped[2:-2:3, 2:-2:3].reshape(1, -1, 3))[0]
    pixels_3 = (seen_3 @ truth.K1.T)[:, :2] / seen_3[:, 2:]
    inside = ((pixels_3 >= 0) & (pixels_3 <= torch.tensor([width - 1, height - 1]))).all(-1)
    matches = {(0, 1): exact_matches(truth), (0, 2): exact_matches(pair_13),
               (1, 2): (pixels_2[inside], pixels_3[inside])}  # fmt: skip
    truths = [truth.depth1, truth.depth2, depth3]
    distortions = [torch.exp(0.2 * (1 - xy[..., 0] / (width - 1))), torch.exp(-0.15 * (1 - xy[..., 1] / (height - 1))),
                   torch.full((1,), 1.1)]  # fmt: skip
    depths = [(true * distortion).float() for true, distortion in zip(truths, distortions, strict=True)]
    scene = Scene(
        poses=torch.stack([torch.eye(4, dtype=torch.float64), truth.cam2_to_cam1, cam3_to_cam1]).float(),
        intrinsics=torch.stack([truth.K1, truth.K2, truth.K1]).float(),
        depths=depths,
        points=[torch.zeros(height, width, 3) for _ in depths],
        confidences=[torch.ones(height, width) for _ in depths],
        masks=[torch.ones(height, width, dtype=torch.bool) for _ in depths],
    )

    def worst_errors(config: DepthFitConfig) -> list[float]:
        pairs = list(zip(correct_depths(scene, matches, config).depths, truths, strict=True))
        scale = torch.cat([(true / depth.double()).reshape(-1) for depth, true in pairs]).median()  # one per scene
        return [float((depth.double() * scale / true - 1).abs().max()) for depth, true in pairs]

    assert len(matches[(1, 2)][0]) > 200
    assert max(worst_errors(DepthFitConfig())) < 0.01
    assert worst_errors(DepthFitConfig(max_pair_outliers=1.0))[1] > 0.05
