"""Ray casting of analytic shapes: exact depth against closed forms."""

import math
import random

import pytest
import torch

from pointmap.data.synthetic import make_scene
from pointmap.data.synthetic.cameras import intrinsics_from_fov, look_at
from pointmap.data.synthetic.palette import MaterialSpec
from pointmap.data.synthetic.primitives import (
    KINDS,
    _nearest_culled,
    local_normals,
    shape_distances,
    to_local_frame,
    to_world_frame,
)
from pointmap.data.synthetic.render import camera_rays, render_depth
from pointmap.data.synthetic.scenes import Layout, SceneBuilder

GREY = MaterialSpec("plain", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
H, W = 24, 32


def _scene(*shapes):
    b = SceneBuilder(random.Random(0))
    grey = b.material(GREY)
    for kind, center, half, *rotation in shapes:
        b.add(kind, center, half, grey, *rotation)
    return b.to_scene(Layout("objects", 0, (1, 1, 1), (0, 0, 0)))


def _camera(eye, target, fov=60.0):
    pose = look_at(torch.tensor([eye], dtype=torch.float32), torch.tensor([target], dtype=torch.float32))
    return intrinsics_from_fov(torch.tensor([fov]), H, W), pose


def test_plane_at_known_distance_has_that_depth_everywhere():
    # A wall 3.25 m in front of the camera, facing it: z-depth is 3.25 at every pixel.
    scene = _scene(("quad", (0.0, 3.25, 1.0), (20.0, 20.0, 0.0), ((1, 0, 0), (0, 0, 1), (0, -1, 0))))
    K, pose = _camera((0.0, 0.0, 1.0), (0.0, 5.0, 1.0))
    depth = render_depth(scene, K, pose, H, W)
    assert depth.shape == (1, H, W)
    torch.testing.assert_close(depth, torch.full_like(depth, 3.25), rtol=1e-6, atol=1e-6)


def test_sphere_depth_matches_closed_form():
    centre, radius = torch.tensor([0.3, 5.0, 1.2]), 1.1
    scene = _scene(("sphere", tuple(centre.tolist()), (radius,) * 3))
    K, pose = _camera((0.0, 0.0, 1.0), (0.0, 5.0, 1.0), fov=50.0)
    depth = render_depth(scene, K, pose, H, W)[0]
    origins, dirs, z_per_t = camera_rays(K, pose, H, W)
    rel = centre - origins[0]
    b = (rel * dirs[0]).sum(-1)
    disc = b**2 - ((rel * rel).sum(-1) - radius**2)
    expected = torch.where(disc >= 0, (b - disc.clamp_min(0).sqrt()) * z_per_t[0], torch.zeros_like(b))
    hit = disc >= 0
    assert 0.2 < hit.float().mean() < 0.9  # the sphere fills part of the view, sky elsewhere
    torch.testing.assert_close(depth.reshape(-1), expected, rtol=1e-5, atol=1e-5)


def test_box_face_and_cylinder_cap_depths():
    # Looking straight down (camera z = world -z) on a box top at z = 0.8 and a cylinder cap at z = 0.5.
    yaw = math.pi / 7  # a turned box: its top is still at z = 0.8
    yawed = ((math.cos(yaw), -math.sin(yaw), 0.0), (math.sin(yaw), math.cos(yaw), 0.0), (0.0, 0.0, 1.0))
    scene = _scene(("box", (-1.0, 0.0, 0.4), (0.6, 0.6, 0.4), yawed), ("cylinder", (1.0, 0.0, 0.25), (0.5, 0.5, 0.25)))
    K, pose = _camera((0.0, 0.0, 3.0), (0.0, 0.0, 0.0), fov=80.0)
    depth = render_depth(scene, K, pose, H, W)[0]
    pts = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])  # world xy of the two tops' centres
    # Read the depth at the pixel each top's centre projects to.
    world2cam = torch.linalg.inv(pose[0])
    for (x, y), top in zip(pts.tolist(), (0.8, 0.5), strict=True):
        p = world2cam @ torch.tensor([x, y, top, 1.0])
        u = K[0, 0, 0] * p[0] / p[2] + K[0, 0, 2]
        v = K[0, 1, 1] * p[1] / p[2] + K[0, 1, 2]
        assert depth[round(v.item()), round(u.item())].item() == pytest.approx(3.0 - top, abs=1e-5)
    assert (depth == 0).any()  # rays past both shapes escape


@pytest.mark.parametrize("kind", KINDS)
def test_culled_nearest_hit_equals_dense_tests(kind):
    scene = make_scene("street", 3)
    K, pose = _camera((0.5, -4.0, 1.6), (2.0, 10.0, 1.0))
    origins, dirs, _ = camera_rays(K, pose, H, W)
    dense_t, dense_index = shape_distances(kind, scene.shapes[kind], origins, dirs).min(-1)
    culled_t, culled_index = _nearest_culled(kind, scene.shapes[kind], origins, dirs)
    assert torch.isfinite(dense_t).any()
    assert torch.equal(torch.isinf(dense_t), torch.isinf(culled_t))
    hit = torch.isfinite(dense_t)
    torch.testing.assert_close(culled_t[hit], dense_t[hit], rtol=0, atol=0)
    assert torch.equal(culled_index[hit], dense_index[hit])


@pytest.mark.slow
def test_compiled_culling_matches_eager():
    # torch.compile takes tens of seconds on a small CPU: kept out of the default run.
    scene = make_scene("room", 2)
    K, pose = _camera((0.5, -1.0, 1.6), (-1.0, 2.0, 0.8))
    origins, dirs, _ = camera_rays(K, pose, H, W)
    for kind in KINDS:
        eager = _nearest_culled(kind, scene.shapes[kind], origins, dirs)
        compiled = _nearest_culled(kind, scene.shapes[kind], origins, dirs, compiled=True)
        assert torch.equal(eager[0], compiled[0]) and torch.equal(eager[1], compiled[1])


def test_local_normals_of_each_kind_at_known_points():
    half = torch.tensor([1.0, 2.0, 0.5])
    # (kind, local point, outward normal): quad +z; box faces by the largest |p| / half (x wins ties);
    # sphere radial; cylinder side radial in xy, caps +-z (radius 1 = half x, height 0.5 = half z).
    cases = [
        (0, (0.3, -0.2, 0.0), (0.0, 0.0, 1.0)),
        (1, (1.0, 0.5, 0.1), (1.0, 0.0, 0.0)),
        (1, (0.2, -2.0, 0.1), (0.0, -1.0, 0.0)),
        (1, (0.1, 0.3, -0.5), (0.0, 0.0, -1.0)),
        (1, (-1.0, 2.0, 0.5), (-1.0, 0.0, 0.0)),
        (2, (0.0, 0.6, 0.8), (0.0, 0.6, 0.8)),
        (3, (0.6, 0.8, 0.1), (0.6, 0.8, 0.0)),
        (3, (0.1, 0.2, 0.5), (0.0, 0.0, 1.0)),
        (3, (0.1, 0.2, -0.5), (0.0, 0.0, -1.0)),
    ]
    kind = torch.tensor([c[0] for c in cases])
    points = torch.tensor([c[1] for c in cases])
    expected = torch.tensor([c[2] for c in cases])
    normals = local_normals(kind, points, half.expand(len(cases), 3))
    torch.testing.assert_close(normals, expected)


def test_frame_changes_are_the_rotation_and_its_transpose():
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(5, 3, 3, generator=generator))  # (5, 3, 3) orthonormal
    v = torch.randn(5, 3, generator=generator)
    torch.testing.assert_close(to_world_frame(v, rotation), (rotation @ v[:, :, None])[:, :, 0])
    torch.testing.assert_close(to_local_frame(v, rotation), (rotation.transpose(1, 2) @ v[:, :, None])[:, :, 0])
    torch.testing.assert_close(to_local_frame(to_world_frame(v, rotation), rotation), v)
