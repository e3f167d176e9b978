"""Rendering: multi-view consistency of depth, determinism, batched equals single, value ranges."""

import pytest
import torch

from pointmap.data.synthetic import make_scene, object_capture, render_views, room_capture, stack_scenes
from pointmap.data.synthetic.cameras import intrinsics_from_fov, look_at
from pointmap.data.synthetic.primitives import cast_rays
from pointmap.data.synthetic.render import render_depth
from pointmap.geometry.cameras import depth_to_points, invert_pose, project_points, transform_points

H, W = 30, 40


def _two_cameras():
    eye = torch.tensor([[0.4, -0.8, 1.5], [-0.3, -0.2, 1.3]])
    target = torch.tensor([[-0.5, 2.0, 0.8], [0.4, 2.0, 0.7]])
    return intrinsics_from_fov(torch.tensor([60.0, 70.0]), H, W), look_at(eye, target)


def test_depth_points_lie_on_surfaces_seen_from_another_camera():
    # Unproject view 1; a ray from camera 2 towards each point can be blocked earlier but never pass
    # through it: hit distance <= distance to the point, with equality where camera 2 sees it.
    scene = make_scene("room", 5)
    K, pose = _two_cameras()
    depth = render_depth(scene, K, pose, H, W)
    world = transform_points(pose[:1], depth_to_points(depth[:1], K[:1])).reshape(1, -1, 3)
    centre2 = pose[1, :3, 3]
    offset = world - centre2
    distance = offset.norm(dim=-1)
    hit_t = cast_rays(scene.shapes, centre2.expand_as(world), offset / distance[..., None]).t
    assert (hit_t <= distance * (1 + 1e-4) + 1e-4).all()
    seen = (hit_t - distance).abs() <= 1e-4 * distance + 1e-4
    assert seen.float().mean() > 0.3


def test_reprojected_depth_matches_the_other_view():
    scene = make_scene("room", 5)
    K, pose = _two_cameras()
    depth = render_depth(scene, K, pose, H, W)
    pts_in_2 = transform_points(invert_pose(pose[1:]) @ pose[:1], depth_to_points(depth[:1], K[:1]))
    uv = project_points(pts_in_2, K[1:])[0].round().long()
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    z = pts_in_2[0, ..., 2][inside]
    seen = depth[1][uv[..., 1][inside], uv[..., 0][inside]]
    rel = (seen - z).abs() / z
    visible = rel < 0.05  # the rest is hidden behind something in view 2
    assert visible.float().mean() > 0.5
    # Nearest-pixel lookup on smooth surfaces: well under 1 % typical error.
    assert rel[visible].median() < 0.01


def test_same_seed_same_scene_and_pixels_other_seed_differs():
    K, pose = _two_cameras()
    rgb_a, depth_a = render_views(make_scene("room", 11), K, pose, H, W)
    rgb_b, depth_b = render_views(make_scene("room", 11), K, pose, H, W)
    assert torch.equal(rgb_a, rgb_b) and torch.equal(depth_a, depth_b)
    rgb_c, _ = render_views(make_scene("room", 12), K, pose, H, W)
    assert (rgb_a - rgb_c).abs().mean() > 0.02


def test_stacked_scenes_render_like_single_scenes():
    K, pose = _two_cameras()
    scenes = [make_scene("room", 2), make_scene("objects", 3), make_scene("street", 4)]
    h, w = 15, 20
    rgb, depth = render_views(stack_scenes(scenes), K.expand(3, -1, -1, -1), pose.expand(3, -1, -1, -1), h, w)
    assert rgb.shape == (3, 2, 3, h, w) and depth.shape == (3, 2, h, w)
    for index, scene in enumerate(scenes):
        rgb_one, depth_one = render_views(scene, K, pose, h, w)
        torch.testing.assert_close(rgb[index], rgb_one, rtol=0, atol=1e-5)
        torch.testing.assert_close(depth[index], depth_one, rtol=0, atol=1e-5)


def test_supersampling_keeps_depth_exact_and_colour_close():
    scene = make_scene("objects", 1)
    K, pose = _two_cameras()
    rgb1, depth1 = render_views(scene, K, pose, H, W, shadows=False)
    rgb2, depth2 = render_views(scene, K, pose, H, W, shadows=False, supersample=2)
    assert torch.equal(depth1, depth2)
    assert (rgb1 - rgb2).abs().mean() < 0.05


def test_room_capture_views():
    views = room_capture(seed=0, num_cameras=3, height=24, width=32)
    assert [v.source for v in views] == [f"synthetic/room/seed=0/cam={i}" for i in range(3)]
    for view in views:
        assert view.image.shape == (3, 24, 32) and view.image.dtype == torch.float32
        assert -1 <= view.image.min() and view.image.max() <= 1 and view.image.std() > 0.05
        assert view.valid.all()  # a closed room: every ray hits a surface
        assert 0.2 < view.depth.min() and view.depth.max() < 12
        # Cameras stand inside the room, at eye height, with orthonormal rotations.
        rotation = view.cam2world[:3, :3]
        torch.testing.assert_close(rotation @ rotation.T, torch.eye(3), atol=1e-5, rtol=0)
        assert 1.2 < view.cam2world[2, 3] < 1.8
    assert not torch.equal(views[0].cam2world, views[1].cam2world)


def test_object_capture_circles_the_objects():
    views = object_capture(seed=3, num_cameras=6, height=24, width=32)
    assert [v.source for v in views] == [f"synthetic/objects/seed=3/cam={i}" for i in range(6)]
    centre = torch.tensor(make_scene("objects", 3).layouts[0].target)
    azimuths = []
    for view in views:
        assert view.valid.float().mean() > 0.9 and view.image.std() > 0.05
        offset = view.cam2world[:3, 3] - centre
        assert 1.7 < offset.norm() < 2.7  # on the 2.0-2.6 m circle
        assert 0.3 < offset[2] / offset.norm() < 0.7  # 20-40 deg above the objects
        forward = view.cam2world[:3, 2]
        assert torch.dot(forward, -offset / offset.norm()) > 0.98  # looking in, at most 0.2 m off the centre
        azimuths.append(torch.atan2(offset[1], offset[0]))
    steps = torch.remainder(torch.diff(torch.stack(azimuths)), 2 * torch.pi)
    assert ((steps > torch.pi / 6) & (steps < torch.pi / 2)).all()  # evenly round: 60 +- 30 deg apart


def test_textureless_objects_keep_their_shapes_and_lose_their_patterns():
    textured = object_capture(seed=3, num_cameras=2, height=96, width=128)
    plain = object_capture(seed=3, num_cameras=2, height=96, width=128, textureless=True)
    assert [v.source for v in plain] == [f"synthetic/objects-plain/seed=3/cam={i}" for i in range(2)]
    roughness = {"textured": 0.0, "plain": 0.0}  # mean colour step between horizontal neighbours, on the objects
    for a, b in zip(textured, plain, strict=True):
        assert torch.equal(a.depth, b.depth) and torch.equal(a.cam2world, b.cam2world)
        changed = (a.image - b.image).abs().amax(0) > 0.02  # (H, W): the objects' pixels
        assert 0.02 < changed.float().mean() < 0.6
        on_objects = changed[:, 1:] & changed[:, :-1]
        for name, view in (("textured", a), ("plain", b)):
            roughness[name] += (view.image[:, :, 1:] - view.image[:, :, :-1]).abs().sum(0)[on_objects].mean().item()
    assert roughness["plain"] < 0.6 * roughness["textured"]  # 0.25 against 0.59 here


def test_rendering_in_several_passes_gives_the_same_pixels(monkeypatch):
    from pointmap.data.synthetic import render

    scenes = stack_scenes([make_scene("room", 1), make_scene("objects", 2)])
    K, pose = _two_cameras()
    K, pose = K.expand(2, -1, -1, -1), pose.expand(2, -1, -1, -1)
    rgb, depth = render_views(scenes, K, pose, 12, 16)
    for max_rays in (12 * 16, 3 * 12 * 16, 7):  # one view per pass, views of two scenes mixed, tiny
        monkeypatch.setattr(render, "rays_per_pass", lambda device, max_rays=max_rays: max_rays)
        rgb_split, depth_split = render_views(scenes, K, pose, 12, 16)
        assert torch.equal(rgb, rgb_split) and torch.equal(depth, depth_split)


def test_packed_to_moves_tensors_of_mixed_dtypes_as_views_of_one_buffer_each():
    from pointmap.data.synthetic.scenes import packed_to

    tensors = [torch.arange(6.0).reshape(2, 3), torch.tensor([[True, False]]), torch.arange(4), torch.ones(2, 2, 2)]
    moved = packed_to(tensors, "cpu")
    for before, after in zip(tensors, moved, strict=True):
        assert torch.equal(before, after) and after.dtype == before.dtype
    assert moved[0].untyped_storage().data_ptr() == moved[3].untyped_storage().data_ptr()  # one float buffer
    assert moved[0].untyped_storage().data_ptr() != tensors[0].untyped_storage().data_ptr()


def test_flash_light_falls_off_with_the_square_of_the_distance_from_the_camera():
    from pointmap.data.synthetic.render import camera_rays, shade_rays

    scene = make_scene("room", 5)
    K, pose = _two_cameras()
    origins, dirs, _ = camera_rays(K[:1], pose[:1], H, W)
    dark, ones = torch.zeros(origins.shape[:2]), torch.ones(origins.shape[:2])
    plain, t = shade_rays(scene, origins, dirs, shadows=False)
    # No flash and the scene's light off: black, sky included; the scene's light alone scales linearly.
    black, _ = shade_rays(scene, origins, dirs, shadows=False, flash=dark, scene_light=dark)
    assert torch.equal(black, torch.zeros_like(black))
    dimmed, _ = shade_rays(scene, origins, dirs, shadows=False, flash=dark, scene_light=0.3 * ones)
    torch.testing.assert_close(dimmed, 0.3 * plain)
    # The flash alone: linear in its intensity.
    flash, _ = shade_rays(scene, origins, dirs, shadows=False, flash=2 * ones, scene_light=dark)
    double, _ = shade_rays(scene, origins, dirs, shadows=False, flash=4 * ones, scene_light=dark)
    torch.testing.assert_close(double, 2 * flash)
    # The same surface points, seen along the same rays from halfway to them: 1 / (d^2 + 0.1) more light.
    hit = torch.isfinite(t[0]) & (t[0] > 0.5)
    closer = origins[:, hit] + 0.5 * t[:, hit, None] * dirs[:, hit]
    near, t_near = shade_rays(scene, closer, dirs[:, hit], shadows=False, flash=2 * ones[:, hit],
                              scene_light=dark[:, hit])
    same_point = (t_near - 0.5 * t[:, hit]).abs() < 1e-4  # a few grazing rays meet another surface first
    assert same_point.float().mean() > 0.99
    gain = (t[:, hit] ** 2 + 0.1) / (t_near**2 + 0.1)
    lit = same_point & (flash[:, hit].amax(-1) > 1e-3)
    assert lit.float().mean() > 0.5
    expected = (flash[:, hit] * gain[..., None])[lit]
    agrees = ((near[lit] - expected).abs() <= 1e-3 * expected + 1e-5).all(-1)
    assert agrees.float().mean() > 0.99  # the rest sit on texture edges, hit a rounding apart


def test_flash_changes_only_the_views_that_have_one(monkeypatch):
    from pointmap.data.synthetic import render

    scene = make_scene("objects", 2)
    K, pose = _two_cameras()
    rgb, depth = render_views(scene, K, pose, H, W)
    same_rgb, _ = render_views(scene, K, pose, H, W, flash=torch.zeros(2), scene_light=torch.ones(2))
    assert torch.equal(same_rgb, rgb)
    lit_rgb, lit_depth = render_views(scene, K, pose, H, W, flash=torch.tensor([0.0, 3.0]),
                                      scene_light=torch.tensor([1.0, 0.2]))
    assert torch.equal(lit_rgb[0], rgb[0]) and torch.equal(lit_depth, depth)
    assert (lit_rgb[1] - rgb[1]).abs().mean() > 0.02
    with pytest.raises(ValueError, match="together"):
        render_views(scene, K, pose, H, W, flash=torch.ones(2))
    # Rendered one view per pass, each view keeps its own flash (to the last bits of vectorised powers).
    monkeypatch.setattr(render, "rays_per_pass", lambda device: H * W)
    split_rgb, _ = render_views(scene, K, pose, H, W, flash=torch.tensor([0.0, 3.0]),
                                scene_light=torch.tensor([1.0, 0.2]))
    torch.testing.assert_close(split_rgb, lit_rgb, rtol=0, atol=1e-6)
