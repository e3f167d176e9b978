"""Quarter turns of photos: the pixel map back to the photo as stored, and the camera the turn rolls.

A photo turned once counter-clockwise moves its pixel (x, y) to (y, W - 1 - x) (pixel centres at integers,
`geometry.cameras`). Its camera is the photo's camera rolled about the optical axis: same centre, same
focal lengths with fx and fy swapped by an odd number of turns.
"""

from __future__ import annotations

import numpy as np


def unturn_map(width: int, height: int, quarter_turns: int) -> np.ndarray:
    """(3, 3) float64 pixel (x, y, 1) of a `width` x `height` image that is a photo turned `quarter_turns`
    times counter-clockwise -> pixel of the photo before the turns."""
    transform = np.eye(3)
    for _ in range(quarter_turns % 4):
        # Undo one turn of an image of this size: (x, y) -> (H - 1 - y, x), in the image before it.
        step = np.array([[0.0, -1.0, height - 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        transform = step @ transform
        width, height = height, width
    return transform


def photo_roll(quarter_turns: int) -> np.ndarray:
    """(4, 4) rotation about the optical axis with cam2world_photo = cam2world_turned @ photo_roll(turns), for
    a photo turned `quarter_turns` times counter-clockwise."""
    turn = np.array([[0.0, -1.0], [1.0, 0.0]])  # the pixel map's rotation part for one turn (`unturn_map`)
    roll = np.eye(4)
    roll[:2, :2] = np.linalg.matrix_power(turn, quarter_turns % 4).T
    return roll


def unturn_intrinsics(K: np.ndarray, width: int, height: int, quarter_turns: int) -> np.ndarray:
    """(3, 3) K in pixels of a photo from the (3, 3) K of the photo turned `quarter_turns` times counter-clockwise,
    which is `width` x `height`: the same rays, with fx and fy swapped by an odd number of turns."""
    return unturn_map(width, height, quarter_turns) @ K @ photo_roll(quarter_turns)[:3, :3]


def unturn_camera(
    K: np.ndarray, cam2world: np.ndarray, width: int, height: int, quarter_turns: int
) -> tuple[np.ndarray, np.ndarray]:
    """The camera of a photo from the camera of the photo turned `quarter_turns` times counter-clockwise.

    Args:
        K: (3, 3) intrinsics in pixels of the turned photo, which is `width` x `height`.
        cam2world: (4, 4) pose of the turned photo's camera.
    Returns:
        (3, 3) K in the photo's pixels (`unturn_intrinsics`) and the (4, 4) cam2world of its camera: the same
        centre rolled about the optical axis, so that every pixel of the photo sees the ray of its turned pixel.
    """
    return unturn_intrinsics(K, width, height, quarter_turns), cam2world @ photo_roll(quarter_turns)


def turn_intrinsics(K: np.ndarray, width: int, height: int, quarter_turns: int) -> np.ndarray:
    """(3, 3) K in pixels of a `width` x `height` image that is a photo turned `quarter_turns` times
    counter-clockwise, from the photo's (3, 3) K: the inverse of `unturn_intrinsics`."""
    return np.linalg.inv(unturn_map(width, height, quarter_turns)) @ K @ photo_roll(quarter_turns)[:3, :3].T
