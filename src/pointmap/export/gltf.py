"""A binary glTF (.glb) of a Scene: the coloured point cloud and one frustum per camera, via trimesh."""

from __future__ import annotations

import os

import numpy as np

from pointmap.align.scene import Scene
from pointmap.export.cameras import ExportCamera, export_cameras
from pointmap.export.points import gather_points
from pointmap.io_utils import atomic_path

# glTF viewers are y-up and look down -z (OpenGL); our world is the first camera's OpenCV frame
# (y down, z forward). The scene's root node turns the world by 180 degrees about x so that the
# reconstruction stands upright; the vertex data itself stays in world coordinates.
WORLD_TO_GLTF = np.diag([1.0, -1.0, -1.0, 1.0])

FRUSTUM_COLOR = np.array([230, 60, 60, 255], dtype=np.uint8)


def _import_trimesh():
    try:
        import trimesh
    except ImportError as err:
        raise ImportError("GLB export needs trimesh; install it with `pip install pointmap[export]`") from err
    return trimesh


def frustum_vertices(camera: ExportCamera, depth: float) -> np.ndarray:
    """(5, 3) world points: the camera centre, then the image corners at z = `depth` (TL, TR, BR, BL)."""
    # Pixel centres sit at integers (`geometry.cameras`): the image's outer edges are at -0.5 and W - 0.5.
    right, bottom = camera.processed_width - 0.5, camera.processed_height - 0.5
    corners = np.array([[-0.5, -0.5, 1], [right, -0.5, 1], [right, bottom, 1], [-0.5, bottom, 1]])
    rays = corners @ np.linalg.inv(camera.K_processed).T  # (4, 3) with z = 1
    in_camera = np.concatenate([np.zeros((1, 3)), rays * depth], axis=0)
    pose = camera.processed_cam2world  # the camera of K_processed
    return in_camera @ pose[:3, :3].T + pose[:3, 3]


def frustum_mesh(camera: ExportCamera, depth: float):
    """A trimesh pyramid (4 sides, both windings so it shows from inside and out) for one camera."""
    trimesh = _import_trimesh()
    sides = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    faces = np.concatenate([sides, sides[:, ::-1]], axis=0)
    return trimesh.Trimesh(
        vertices=frustum_vertices(camera, depth),
        faces=faces,
        vertex_colors=np.tile(FRUSTUM_COLOR, (5, 1)),
        process=False,
    )


def write_glb(scene: Scene, path: str | os.PathLike, frustum_scale: float = 0.05) -> None:
    """Write the point cloud and the camera frustums atomically to a .glb (opens in Blender, three.js).

    Args:
        scene: the reconstruction; its masks select the points.
        path: the .glb file.
        frustum_scale: frustum depth as a fraction of the point cloud's bounding-box diagonal.
    """
    trimesh = _import_trimesh()
    cloud = gather_points(scene)
    cameras = export_cameras(scene)
    centres = np.stack([camera.cam2world[:3, 3] for camera in cameras])
    extent = np.concatenate([cloud.xyz.astype(np.float64), centres])
    diagonal = float(np.linalg.norm(extent.max(axis=0) - extent.min(axis=0)))
    depth = frustum_scale * diagonal if diagonal > 0 else 0.1

    glb = trimesh.Scene()
    if len(cloud):
        colors = np.concatenate([cloud.rgb, np.full((len(cloud), 1), 255, dtype=np.uint8)], axis=1)
        glb.add_geometry(trimesh.PointCloud(cloud.xyz, colors=colors), geom_name="points", transform=WORLD_TO_GLTF)
    for camera in cameras:
        glb.add_geometry(
            frustum_mesh(camera, depth), geom_name=f"camera {camera.name}", transform=WORLD_TO_GLTF
        )
    with atomic_path(path) as tmp:
        glb.export(str(tmp), file_type="glb")
