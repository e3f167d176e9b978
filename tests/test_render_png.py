"""Point-cloud rendering to PNG: projection, z-buffer, frustums and viewpoints against closed forms."""

import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.align.scene import Scene
from pointmap.render_png import (
    frustum_segments,
    look_at,
    render_points,
    render_scene,
    sample_segments,
    save_png,
    scene_to_pngs,
)

WHITE = np.array([255, 255, 255], dtype=np.uint8)


def _K(focal: float, width: int, height: int) -> np.ndarray:
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])


def test_look_at_from_minus_z_is_the_identity_rotation():
    cam2world = look_at(eye=[0, 0, -5], target=[0, 0, 0], up=[0, -1, 0])
    np.testing.assert_allclose(cam2world[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(cam2world[:3, 3], [0, 0, -5])


def test_look_at_puts_the_target_on_the_optical_axis_and_up_up():
    eye, target = np.array([3.0, -2.0, 1.0]), np.array([0.5, 0.2, 4.0])
    cam2world = look_at(eye, target, up=[0, 0, 1])
    np.testing.assert_allclose(cam2world[:3, :3] @ cam2world[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam2world[:3, :3]) == pytest.approx(1.0)
    target_cam = np.linalg.inv(cam2world) @ np.append(target, 1)
    np.testing.assert_allclose(target_cam[:2], 0, atol=1e-12)
    assert target_cam[2] == pytest.approx(np.linalg.norm(target - eye))
    assert cam2world[2, 1] < 0  # the camera's y (image down) points against world up


def test_look_at_rejects_up_along_the_view():
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 0], [0, 0, 1], up=[0, 0, 2])


def test_point_lands_on_its_pixel_with_its_colour():
    width, height, focal = 40, 30, 25.0
    K = _K(focal, width, height)
    cam2world = np.eye(4)
    cam2world[:3, 3] = [1.0, -0.5, 2.0]
    point_cam = np.array([0.8, -0.48, 4.0])  # u = 25 * 0.2 + 19.5 = 24.5, v = 25 * -0.12 + 14.5 = 11.5
    point_world = point_cam + cam2world[:3, 3]
    colour = np.array([[0.2, 0.4, 0.8]])
    image = render_points(point_world[None], colour, cam2world, K, width, height, point_size=1)
    expected_col, expected_row = np.round(24.5), np.round(11.5)  # numpy rounds half to even: 24, 12
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[int(expected_row), int(expected_col)], [51, 102, 204])
    painted = np.argwhere((image != WHITE).any(-1))
    np.testing.assert_array_equal(painted, [[expected_row, expected_col]])


def test_splat_covers_a_centred_square():
    width, height = 20, 20
    K = _K(10.0, width, height)
    point = np.array([[0.1, 0.15, 2.0]])  # u = 0.5 + 9.5 = 10, v = 0.75 + 9.5 = 10.25 -> 10
    image = render_points(point, [[1.0, 0.0, 0.0]], np.eye(4), K, width, height, point_size=3)
    painted = np.argwhere((image != WHITE).any(-1))
    rows, cols = np.meshgrid(range(9, 12), range(9, 12), indexing="ij")
    np.testing.assert_array_equal(painted, np.stack([rows.ravel(), cols.ravel()], -1))
    np.testing.assert_array_equal(image[10, 10], [255, 0, 0])


@pytest.mark.parametrize("near_first", [True, False])
def test_nearest_point_wins_the_pixel_in_any_order(near_first):
    K = _K(10.0, 9, 9)
    near, far = np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 3.0])
    points = np.stack([near, far] if near_first else [far, near])
    colours = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]] if near_first else [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    image = render_points(points, colours, np.eye(4), K, 9, 9, point_size=1)
    np.testing.assert_array_equal(image[4, 4], [0, 255, 0])


def test_points_behind_the_camera_and_outside_the_image_are_dropped():
    K = _K(10.0, 9, 9)
    points = np.array([[0.0, 0.0, -1.0], [5.0, 0.0, 1.0]])  # behind; projects to u = 54
    image = render_points(points, np.ones((2, 3)) * 0.5, np.eye(4), K, 9, 9, background=(1, 1, 1))
    assert (image == 255).all()


def test_frustum_corners_project_to_the_image_corners_at_the_given_depth():
    width, height, depth = 64, 48, 0.3
    K = _K(50.0, width, height)
    cam2world = look_at([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], up=[0, 0, 1])
    segments = frustum_segments(cam2world, K, height, width, depth)
    assert segments.shape == (8, 2, 3)
    np.testing.assert_allclose(segments[:4, 0], np.tile(cam2world[:3, 3], (4, 1)))
    corners_world = segments[:4, 1]
    corners_cam = corners_world @ np.linalg.inv(cam2world)[:3, :3].T + np.linalg.inv(cam2world)[:3, 3]
    np.testing.assert_allclose(corners_cam[:, 2], depth)
    uv = corners_cam @ K.T
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], [[-0.5, -0.5], [63.5, -0.5], [63.5, 47.5], [-0.5, 47.5]])
    np.testing.assert_allclose(segments[4:, 0], corners_world)  # the rim joins consecutive corners
    np.testing.assert_allclose(segments[4:, 1], np.roll(corners_world, -1, axis=0))


@pytest.mark.parametrize("depth", [0.5, 2.0, 20.0])
def test_segments_are_drawn_without_gaps_at_any_depth(depth):
    width, height, focal = 60, 20, 30.0
    K = _K(focal, width, height)
    half_width = depth * 25 / focal  # spans columns 29.5 - 25 ... 29.5 + 25 at row 9.5 + 0
    segment = np.array([[[-half_width, 0.0, depth], [half_width, 0.0, depth]]])
    points = sample_segments(segment, np.eye(4), K)
    image = render_points(points, np.zeros((len(points), 3)), np.eye(4), K, width, height, point_size=1)
    painted_rows, painted_cols = np.nonzero((image != WHITE).any(-1))
    assert set(painted_rows) == {10}  # v = 9.5 rounds to 10 (half to even)
    np.testing.assert_array_equal(np.sort(painted_cols), np.arange(4, 55))  # every column from round(4.5) to 54.5


def _plane_scene(colour=(0.2, 0.6, 0.4)) -> Scene:
    """One camera at the origin looking at a 2 x 1.5 plane through (0, 0, 4), tilted: z = 4 + x / 2."""
    height, width = 31, 41  # odd: the median point (0, 0, 4) is a grid point
    K = torch.tensor(_K(20.0, width, height), dtype=torch.float32)
    ys, xs = torch.meshgrid(torch.linspace(-0.75, 0.75, height), torch.linspace(-1, 1, width), indexing="ij")
    points = torch.stack([xs, ys, 4.0 + xs / 2], -1)
    return Scene(
        poses=torch.eye(4)[None],
        intrinsics=K[None],
        depths=[points[..., 2]],
        points=[points],
        confidences=[torch.full((height, width), 2.0)],
        masks=[torch.ones(height, width, dtype=torch.bool)],
        colors=[torch.tensor(colour).expand(height, width, 3)],
    )


@pytest.mark.parametrize("viewpoint", ["behind", "side"])
def test_scene_render_aims_at_the_cloud_centre(viewpoint):
    image = render_scene(_plane_scene(), viewpoint, width=80, height=60, point_size=3)
    # The plane's median point (0, 0, 4) is the look-at target: it lands on the image centre.
    np.testing.assert_array_equal(image[29:31, 39:41].reshape(-1, 3), np.tile([51, 153, 102], (4, 1)))
    plane = (image == [51, 153, 102]).all(-1)
    rows, cols = np.nonzero(plane)
    # Framed: from behind the plane alone is framed and spans most of the image; from the side the first
    # camera is framed too, so the plane is smaller and the blue frustum is in view.
    blue = (image == [26, 77, 230]).all(-1)  # FIRST_FRUSTUM_COLOR (0.1, 0.3, 0.9)
    span = max(rows.max() - rows.min(), cols.max() - cols.min())
    if viewpoint == "behind":
        assert span > 45
    else:
        assert 15 < span < 40 and blue.sum() > 10


def test_side_view_sees_the_plane_edge_on_from_the_right():
    image = render_scene(_plane_scene(), "side", width=80, height=60, point_size=1, frustums=False)
    rows, cols = np.nonzero((image != WHITE).any(-1))
    # From the first camera's right the plane (tilted 27 degrees off facing it) is seen obliquely: far narrower.
    behind = render_scene(_plane_scene(), "behind", width=80, height=60, point_size=1, frustums=False)
    rows_b, cols_b = np.nonzero((behind != WHITE).any(-1))
    assert (cols.max() - cols.min()) < 0.75 * (cols_b.max() - cols_b.min())


def test_scene_without_kept_points_is_an_error():
    scene = _plane_scene()
    scene.masks = [torch.zeros_like(scene.masks[0])]
    with pytest.raises(ValueError, match="keeps no points"):
        render_scene(scene)


def test_pngs_round_trip(tmp_path):
    image = render_scene(_plane_scene(), "behind", width=32, height=24)
    save_png(image, tmp_path / "one.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "one.png")), image)
    paths = scene_to_pngs(_plane_scene(), tmp_path, "plane", width=32, height=24, max_colors=None)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["plane_behind.png", "plane_side.png"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["one.png", "plane_behind.png", "plane_side.png"]
    for path, viewpoint in zip(paths, ("behind", "side"), strict=True):  # one cloud for both: same pictures
        expected = render_scene(_plane_scene(), viewpoint, width=32, height=24)
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected)


def test_palette_png_keeps_a_few_colours_exactly(tmp_path):
    image = render_scene(_plane_scene(), "behind", width=64, height=48)  # white, plane green, blue frustum
    save_png(image, tmp_path / "palette.png", max_colors=16)
    read_back = Image.open(tmp_path / "palette.png")
    assert read_back.mode == "P"
    np.testing.assert_array_equal(np.asarray(read_back.convert("RGB")), image)
    with pytest.raises(ValueError, match="2 to 256"):
        save_png(image, tmp_path / "bad.png", max_colors=1000)
