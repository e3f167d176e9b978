"""Batched camera sampling: cameras stand where each scene kind allows and look where they should."""

import math

import torch

from pointmap.data.synthetic import make_scene
from pointmap.data.synthetic.sampling import (
    FIRST_NORMALS,
    FIRST_UNIFORMS,
    SECOND_NORMALS,
    SECOND_UNIFORMS,
    LayoutBatch,
    clear_eyes,
    draw_blocks,
    first_views,
    second_views,
)
from pointmap.data.synthetic.scenes import Layout


def test_clear_eyes_against_footprints_and_padding():
    layouts = LayoutBatch.of(
        [
            Layout("room", 0, (3.0, 3.0, 2.5), (0.0, 0.0, 1.0), obstacles=((1.0, 1.0, 0.5),)),
            Layout("objects", 0, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
        ]
    )
    assert layouts.obstacles.shape == (2, 1, 3) and layouts.obstacles[1, 0, 2] == -1  # padding
    eyes = torch.tensor([[1.0, 1.2, 1.5], [2.0, 2.0, 1.5], [1.0, 1.65, 1.5]])
    clear = clear_eyes(layouts.obstacles, eyes.expand(2, -1, -1), margin=0.2)
    assert clear.tolist() == [[False, True, False], [True, True, True]]


def _layouts():
    return LayoutBatch.of([make_scene(kind, 1).layouts[0] for kind in ("room", "objects", "street")])


def _blocks(count: int, uniforms: int, normals: int):
    generator = torch.Generator().manual_seed(0)
    u, n = zip(*[draw_blocks(generator, count, uniforms, normals) for _ in range(3)], strict=True)
    return torch.stack(u), torch.stack(n)


def test_first_views_suit_each_kind():
    layouts = _layouts()
    uniform, normal = _blocks(64, FIRST_UNIFORMS, FIRST_NORMALS)
    eye, target, fov, roll = first_views(layouts, uniform, normal, (45.0, 80.0))
    assert eye.shape == target.shape == (3, 64, 3) and fov.shape == roll.shape == (3, 64)
    assert ((fov >= 45) & (fov <= 80)).all() and roll.abs().max() < math.radians(20)
    hx, hy, _ = layouts.extent[0].tolist()
    room_eye = eye[0]
    assert (room_eye[:, 0].abs() <= hx - 0.4).all() and (room_eye[:, 1].abs() <= hy - 0.4).all()
    assert ((room_eye[:, 2] >= 0.9) & (room_eye[:, 2] <= 1.9)).all()
    assert clear_eyes(layouts.obstacles[:1], room_eye[None]).float().mean() > 0.95
    # Object orbits: 1.2-3.5 m from the objects' centre, above the ground, looking at it.
    radius = (eye[1] - layouts.target[1]).norm(dim=-1)
    assert ((radius >= 1.2 - 1e-5) & (radius <= 3.5 + 1e-5)).all() and (eye[1, :, 2] > 0).all()
    assert (target[1] - layouts.target[1]).norm(dim=-1).max() < 1.0
    # Closer orbits on request (SyntheticConfig.object_orbit_m); the other kinds' cameras do not move.
    close_eye, _, _, _ = first_views(layouts, uniform, normal, (45.0, 80.0), orbit_m=(0.5, 0.8))
    close_radius = (close_eye[1] - layouts.target[1]).norm(dim=-1)
    assert ((close_radius >= 0.5 - 1e-5) & (close_radius <= 0.8 + 1e-5)).all()
    torch.testing.assert_close(close_radius, 0.5 + 0.3 * (radius - 1.2) / 2.3)  # the same draws, mapped
    assert torch.equal(close_eye[[0, 2]], eye[[0, 2]])
    # Streets: eye height 1.3-2.2 m, looking 10 m ahead, mostly along the street (y).
    assert ((eye[2, :, 2] >= 1.3) & (eye[2, :, 2] <= 2.2)).all()
    ahead = target[2] - eye[2]
    torch.testing.assert_close(ahead.norm(dim=-1), torch.full((64,), 10.0))
    assert (ahead[:, 1].abs() > ahead[:, 0].abs()).float().mean() > 0.6


def test_second_views_stay_near_the_first():
    layouts = _layouts()
    uniform, normal = _blocks(1, FIRST_UNIFORMS, FIRST_NORMALS)
    eye1, target1, _, _ = first_views(layouts, uniform, normal, (45.0, 80.0))
    eye1, target1 = eye1[:, 0], target1[:, 0]
    uniform, normal = _blocks(32, SECOND_UNIFORMS, SECOND_NORMALS)
    eye2, target2, fov2, _ = second_views(layouts, eye1, target1, uniform, normal, (50.0, 60.0))
    assert ((fov2 >= 50) & (fov2 <= 60)).all()
    baseline = (eye2 - eye1[:, None]).norm(dim=-1)
    assert baseline[0].max() <= 1.6 + 1e-5 and baseline[2].max() <= 4.0 + 1e-5
    hx, hy, hz = layouts.extent[0].tolist()
    assert (eye2[0, :, 0].abs() <= hx - 0.2 + 1e-5).all() and (eye2[0, :, 2] <= hz - 0.3 + 1e-5).all()
    # Objects: the same orbit within 0.75-1.3 of the first view's distance to its target.
    ratio = (eye2[1] - target1[1]).norm(dim=-1) / (eye1[1] - target1[1]).norm()
    assert ((ratio >= 0.75 - 1e-4) & (ratio <= 1.3 + 1e-4)).all()
