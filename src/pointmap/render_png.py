"""Render a Scene's coloured point cloud and camera frustums to a PNG without a GPU or a display.

A z-buffered square splat in numpy: every point covers `point_size` x `point_size` pixels and the
nearest point wins each pixel. Camera frustums are 3D line segments sampled densely enough to leave
no gaps, z-tested against the cloud. Viewpoints are OpenCV cameras (x right, y down, z forward)
with cam2world poses, aimed by `look_at`.
"""

from __future__ import annotations

import io
import os
from typing import Literal

import numpy as np

from pointmap.align.scene import Scene
from pointmap.io_utils import atomic_write_bytes

Viewpoint = Literal["behind", "side"]
FRUSTUM_COLOR = (0.85, 0.1, 0.1)
FIRST_FRUSTUM_COLOR = (0.1, 0.3, 0.9)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """cam2world (4, 4) of an OpenCV camera at `eye` looking at `target`, image up along `up`.

    Args:
        eye: (3,) camera centre in the world.
        target: (3,) point that lands on the image centre.
        up: (3,) world direction that points up in the image (the camera's -y).
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-12:
        raise ValueError("look_at: eye and target coincide; move the eye away from the target")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)  # OpenCV: x = y cross z with y = -up
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: `up` is parallel to the viewing direction; pass another up vector")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cam2world = np.eye(4)
    cam2world[:3, 0], cam2world[:3, 1], cam2world[:3, 2], cam2world[:3, 3] = right, down, forward, eye
    return cam2world


def render_points(
    points: np.ndarray,
    colors: np.ndarray,
    cam2world: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    point_size: int = 2,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Z-buffered splat of coloured points seen by a pinhole camera.

    Args:
        points: (P, 3) world points.
        colors: (P, 3) float in [0, 1].
        cam2world: (4, 4) pose of the rendering camera (OpenCV axes).
        K: (3, 3) intrinsics in pixels of the (height, width) image; pixel centres at integers.
        point_size: side of the square splat in pixels; a point at pixel (u, v) covers columns
            round(u) - (point_size - 1) // 2 ... round(u) + point_size // 2 (rows alike).
        background: colour of pixels no point covers.
    Returns:
        (height, width, 3) uint8 image.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f"{len(points)} points but {len(colors)} colours; pass one colour per point")
    if point_size < 1:
        raise ValueError(f"point_size={point_size}; pass 1 or more pixels")
    world2cam = np.linalg.inv(np.asarray(cam2world, dtype=np.float64))
    cam = points @ world2cam[:3, :3].T + world2cam[:3, 3]
    in_front = cam[:, 2] > 1e-6
    cam, colors = cam[in_front], colors[in_front]
    uv = cam @ np.asarray(K, dtype=np.float64).T
    cols = np.round(uv[:, 0] / uv[:, 2]).astype(np.int64)
    rows = np.round(uv[:, 1] / uv[:, 2]).astype(np.int64)
    offsets = np.arange(point_size) - (point_size - 1) // 2
    d_rows, d_cols = (grid.reshape(-1) for grid in np.meshgrid(offsets, offsets, indexing="ij"))
    splat_rows = (rows[:, None] + d_rows[None]).reshape(-1)
    splat_cols = (cols[:, None] + d_cols[None]).reshape(-1)
    source = np.repeat(np.arange(len(cam)), len(d_rows))
    inside = (splat_rows >= 0) & (splat_rows < height) & (splat_cols >= 0) & (splat_cols < width)
    pixel = splat_rows[inside] * width + splat_cols[inside]
    source = source[inside]
    # Z-buffer: order by pixel, then depth (ties by point index); the first entry of each pixel is the nearest.
    order = np.lexsort((source, cam[source, 2], pixel))
    first_pixels, first = np.unique(pixel[order], return_index=True)
    image = np.empty((height * width, 3))
    image[:] = background
    image[first_pixels] = colors[source[order[first]]]
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3)


def frustum_segments(cam2world: np.ndarray, K: np.ndarray, height: int, width: int, depth: float) -> np.ndarray:
    """World-frame line segments of one camera's frustum, cut at z = `depth`.

    Args:
        cam2world: (4, 4) pose.
        K: (3, 3) intrinsics of an (height, width) image.
    Returns:
        (8, 2, 3): four edges from the centre to the image corners, four edges of the image rectangle.
    """
    # Pixel centres sit at integers, so the image's outer corners are at -0.5 and width - 0.5.
    left, top, right, bottom = -0.5, -0.5, width - 0.5, height - 0.5
    corners_px = np.array([[left, top, 1], [right, top, 1], [right, bottom, 1], [left, bottom, 1]])
    corners_cam = (corners_px @ np.linalg.inv(np.asarray(K, dtype=np.float64)).T) * depth
    corners = corners_cam @ np.asarray(cam2world)[:3, :3].T + np.asarray(cam2world)[:3, 3]
    centre = np.asarray(cam2world)[:3, 3]
    rays = [(centre, corner) for corner in corners]
    rim = [(corners[k], corners[(k + 1) % 4]) for k in range(4)]
    return np.array(rays + rim)


def sample_segments(segments: np.ndarray, cam2world: np.ndarray, K: np.ndarray, max_samples: int = 4096) -> np.ndarray:
    """Points along 3D segments, dense enough to draw them without gaps from a rendering camera.

    Each segment gets samples at most half a pixel apart where it is nearest to the camera (its spacing
    is 0.5 z_near / focal), ends included, and at most `max_samples` of them.

    Args:
        segments: (S, 2, 3) world-frame start and end points.
        cam2world: (4, 4) rendering camera; K: (3, 3) its intrinsics.
    Returns:
        (M, 3) world points.
    """
    world2cam = np.linalg.inv(np.asarray(cam2world, dtype=np.float64))
    focal = float(np.asarray(K)[0, 0])
    samples = [np.zeros((0, 3))]
    for start, end in np.asarray(segments, dtype=np.float64):
        z_near = min((world2cam[:3, :3] @ point + world2cam[:3, 3])[2] for point in (start, end))
        if z_near <= 0:  # partly behind the camera: sample as if it touched the image plane at 1 px depth
            z_near = 1.0 / focal
        spacing = 0.5 * z_near / focal
        count = int(np.clip(np.ceil(np.linalg.norm(end - start) / spacing) + 1, 2, max_samples))
        samples.append(start + np.linspace(0, 1, count)[:, None] * (end - start))
    return np.concatenate(samples)


def scene_cloud(scene: Scene, max_points: int = 400_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The kept points of a Scene and their colours, subsampled to at most `max_points`.

    Returns:
        (P, 3) world points and (P, 3) colours in [0, 1] (grey where the Scene has no colours).
    """
    points, colors = [], []
    for index, (pts, mask) in enumerate(zip(scene.points, scene.masks, strict=True)):
        keep = mask.detach().cpu().bool()
        points.append(pts.detach().cpu().float()[keep].numpy())
        if scene.colors is not None:
            colors.append(scene.colors[index].detach().cpu().float()[keep].numpy())
        else:
            colors.append(np.full((int(keep.sum()), 3), 0.6))
    points_np, colors_np = np.concatenate(points), np.concatenate(colors)
    if len(points_np) > max_points:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(points_np), max_points, replace=False))
        points_np, colors_np = points_np[pick], colors_np[pick]
    return points_np.astype(np.float64), colors_np.astype(np.float64)


def scene_viewpoint(
    scene: Scene, points: np.ndarray, viewpoint: Viewpoint, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """A rendering camera aimed at the cloud's median point, with a focal that frames the cloud.

    "behind" stands behind and above the first camera (half the first camera's distance to the
    centre back along its optical axis, and as much up); "side" looks at the centre from the first
    camera's right, slightly from above. "Up" is the first camera's -y. The focal keeps all but the
    outermost 2 % of the cloud on each side inside 90 % of the image, and from the side the camera
    centres too (but for those more than twice the median camera distance from the cloud's centre).

    Args:
        points: (P, 3) the cloud to frame (from `scene_cloud`).
    Returns:
        cam2world (4, 4) and K (3, 3) for a (height, width) image.
    """
    if len(points) == 0:
        raise ValueError("the scene keeps no points; lower min_conf or check the reconstruction")
    first = scene.poses[0].detach().cpu().double().numpy()
    right, down, forward, first_centre = first[:3, 0], first[:3, 1], first[:3, 2], first[:3, 3]
    centre = np.median(points, axis=0)
    distance = max(float(np.linalg.norm(centre - first_centre)), 1e-6)
    if viewpoint == "behind":
        eye = first_centre - 0.5 * distance * forward - 0.5 * distance * down
    elif viewpoint == "side":
        eye = centre + 1.2 * distance * right - 0.3 * distance * down
    else:
        raise ValueError(f"viewpoint {viewpoint!r}; pass 'behind' or 'side'")
    cam2world = look_at(eye, centre, -down)
    # Focal that puts the cloud, but for 2 % of outliers on each side, and the camera centres inside 90 %
    # of the image.
    world2cam = np.linalg.inv(cam2world)
    cam = points @ world2cam[:3, :3].T + world2cam[:3, 3]
    cam = cam[cam[:, 2] > 1e-3 * distance]
    if len(cam) == 0:
        raise ValueError(f"no point lies in front of the {viewpoint!r} viewpoint; the scene is degenerate")
    # From behind, the cloud alone is framed (cameras spread sideways would shrink it); from the side the
    # cameras are framed too, but for those much farther out than the others (often misregistered ones):
    # they may leave the frame instead of shrinking the cloud to a few pixels.
    extent = np.abs(np.percentile(cam[:, :2] / cam[:, 2:], [2, 98], axis=0)).max(axis=0)  # (2,) tangents
    if viewpoint == "side":
        centres_world = scene.poses[:, :3, 3].detach().cpu().double().numpy()
        centre_distance = np.linalg.norm(centres_world - centre, axis=1)
        centres_world = centres_world[centre_distance <= 2 * np.median(centre_distance)]
        centres = centres_world @ world2cam[:3, :3].T + world2cam[:3, 3]
        centres = centres[centres[:, 2] > 0.05 * distance]
        if len(centres):
            extent = np.maximum(extent, np.abs(centres[:, :2] / centres[:, 2:]).max(axis=0))
    tan_x, tan_y = extent
    focal = 0.45 * min(width / max(tan_x, 1e-6), height / max(tan_y, 1e-6))
    K = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    return cam2world, K


def render_scene(
    scene: Scene,
    viewpoint: Viewpoint = "behind",
    width: int = 800,
    height: int = 600,
    point_size: int = 2,
    frustums: bool = True,
    max_points: int = 400_000,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Render a Scene's kept points (and its cameras as frustums) from a viewpoint framing the cloud.

    Args:
        scene: the reconstruction; `masks` choose the points, `colors` colour them.
        viewpoint: "behind" (behind and above the first camera) or "side" (from its right).
        point_size: splat side in pixels (2-3 suits clouds of 10^5 points at 800 x 600).
        frustums: draw every camera as a frustum, the first in blue, the others in red.
        max_points: the cloud is subsampled (seeded) above this many points.
    Returns:
        (height, width, 3) uint8 image.
    """
    points, colors = scene_cloud(scene, max_points=max_points)
    return _render_cloud(scene, points, colors, viewpoint, width, height, point_size, frustums, background)


def _render_cloud(
    scene: Scene,
    points: np.ndarray,
    colors: np.ndarray,
    viewpoint: Viewpoint,
    width: int,
    height: int,
    point_size: int,
    frustums: bool,
    background: tuple[float, float, float],
) -> np.ndarray:
    """render_scene on the cloud `scene_cloud` gave: (P, 3) points, (P, 3) colours."""
    cam2world, K = scene_viewpoint(scene, points, viewpoint, width, height)
    if frustums:
        poses = scene.poses.detach().cpu().double().numpy()
        intrinsics = scene.intrinsics.detach().cpu().double().numpy()
        centre = np.median(points, axis=0)
        frustum_depth = 0.15 * np.median(np.linalg.norm(poses[:, :3, 3] - centre, axis=1))
        line_points, line_colors = [], []
        for index, (pose, K_cam, depth_map) in enumerate(zip(poses, intrinsics, scene.depths, strict=True)):
            cam_height, cam_width = depth_map.shape
            segments = frustum_segments(pose, K_cam, cam_height, cam_width, max(frustum_depth, 1e-6))
            samples = sample_segments(segments, cam2world, K)
            line_points.append(samples)
            line_colors.append(np.tile(FIRST_FRUSTUM_COLOR if index == 0 else FRUSTUM_COLOR, (len(samples), 1)))
        points = np.concatenate([points, *line_points])
        colors = np.concatenate([colors, *line_colors])
    return render_points(points, colors, cam2world, K, width, height, point_size=point_size, background=background)


def save_png(image: np.ndarray, path: str | os.PathLike, max_colors: int | None = None) -> None:
    """Write an (H, W, 3) uint8 image as PNG, atomically.

    Args:
        max_colors: quantize to a palette of this many colours (2-256): a point cloud render at 800 x 600
            shrinks about threefold, small enough to keep in a repository's docs. None keeps every colour.
    """
    from PIL import Image

    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if max_colors is not None:
        if not 2 <= max_colors <= 256:
            raise ValueError(f"max_colors={max_colors}; a PNG palette holds 2 to 256 colours (or pass None)")
        picture = picture.quantize(colors=max_colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())


def scene_to_pngs(
    scene: Scene,
    out_dir: str | os.PathLike,
    stem: str,
    width: int = 800,
    height: int = 600,
    point_size: int = 2,
    max_colors: int | None = 256,
) -> list[str]:
    """Render `scene` from "behind" and "side" into `out_dir`/`stem`_behind.png and `stem`_side.png.

    Args:
        max_colors: palette size of the PNGs (`save_png`); None keeps every colour.
    Returns:
        The two paths written.
    """
    points, colors = scene_cloud(scene)  # once for both viewpoints
    written = []
    for viewpoint in ("behind", "side"):
        path = os.path.join(out_dir, f"{stem}_{viewpoint}.png")
        image = _render_cloud(scene, points, colors, viewpoint, width, height, point_size, True, (1.0, 1.0, 1.0))
        save_png(image, path, max_colors=max_colors)
        written.append(path)
    return written
