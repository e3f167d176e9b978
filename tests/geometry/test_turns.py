"""Quarter turns: the pixel map follows Pillow's turns, and the unturned camera sees what the turned one sees."""

import numpy as np
import PIL.Image
import pytest

from pointmap.geometry.turns import photo_roll, turn_intrinsics, unturn_camera, unturn_map
from pointmap.images import turn_image


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5])
def test_the_pixel_map_finds_every_turned_pixel_in_the_photo(turns):
    photo = np.random.default_rng(0).integers(0, 255, (5, 8, 3), dtype=np.uint8)  # (H, W, 3): not square
    turned = np.asarray(turn_image(PIL.Image.fromarray(photo), turns))
    height, width = turned.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    source = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1) @ unturn_map(width, height, turns).T
    x, y = source[:, 0].astype(int), source[:, 1].astype(int)
    assert np.allclose(source[:, :2], np.stack([x, y], 1))
    np.testing.assert_array_equal(turned.reshape(-1, 3), photo[y, x])


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_the_photo_camera_projects_points_where_the_turn_maps_them(turns):
    rng = np.random.default_rng(turns)
    width, height = (480, 640) if turns % 2 else (640, 480)  # the turned photo of a 640 x 480 one
    K_turned = np.array([[520.0, 0.0, 230.0], [0.0, 530.0, 330.0], [0.0, 0.0, 1.0]])
    angle = 0.3
    cam2world = np.eye(4)
    cam2world[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    cam2world[:3, 3] = [0.4, -0.2, 1.0]
    points = rng.normal(size=(50, 3)) + cam2world[:3, 3] + 4 * cam2world[:3, 2]  # (50, 3) in front

    def project(K, pose):
        in_camera = (points - pose[:3, 3]) @ pose[:3, :3]
        pixels = in_camera @ K.T
        return pixels[:, :2] / pixels[:, 2:]

    K_photo, pose_photo = unturn_camera(K_turned, cam2world, width, height, turns)
    turned_pixels = project(K_turned, cam2world)
    expected = np.c_[turned_pixels, np.ones(50)] @ unturn_map(width, height, turns).T
    np.testing.assert_allclose(project(K_photo, pose_photo), expected[:, :2], atol=1e-9)
    assert K_photo[0, 1] == 0 and K_photo[1, 0] == 0 and K_photo[0, 0] > 0 and K_photo[1, 1] > 0
    if turns % 2:  # fx and fy swap places, the centres stay
        assert (K_photo[0, 0], K_photo[1, 1]) == (530.0, 520.0)
    np.testing.assert_allclose(pose_photo[:3, 3], cam2world[:3, 3])
    np.testing.assert_allclose(turn_intrinsics(K_photo, width, height, turns), K_turned, atol=1e-12)
    np.testing.assert_allclose(photo_roll(turns) @ photo_roll(4 - turns), np.eye(4), atol=1e-15)
