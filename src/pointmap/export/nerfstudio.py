"""A nerfstudio transforms.json of a Scene: OpenGL camera axes, original-photo intrinsics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from pointmap.align.scene import Scene
from pointmap.export.cameras import corner_origin, export_cameras
from pointmap.io_utils import atomic_write_text

# nerfstudio (like NeRF and Blender) uses OpenGL camera axes: x right, y up, z backward. Flipping the
# camera's y and z axes turns an OpenCV cam2world into an OpenGL one; the world frame is unchanged.
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def write_transforms(
    scene: Scene,
    path: str | os.PathLike,
    image_paths: list[str] | None = None,
    ply_file_path: str | None = None,
) -> None:
    """Write a nerfstudio transforms.json atomically.

    Args:
        scene: the reconstruction.
        path: the .json file; `file_path` entries are relative to its folder.
        image_paths: per image, the file nerfstudio should load; default the original photos (scenes
            whose views have no file need this: `save_scene` passes the images it wrote).
        ply_file_path: a point cloud for splatfacto's initialisation, relative to the json's folder.
    """
    folder = Path(path).parent
    cameras = export_cameras(scene)
    frames = []
    for index, camera in enumerate(cameras):
        image = image_paths[index] if image_paths is not None else camera.image_path
        if image is None:
            raise ValueError(
                f"image {index} ({camera.name}) has no original file; pass image_paths (save_scene does)"
            )
        K = corner_origin(camera.K)  # nerfstudio's pixel centres are at u + 0.5, like COLMAP's
        frames.append(
            {
                "file_path": Path(os.path.relpath(os.path.abspath(image), os.path.abspath(folder))).as_posix(),
                "transform_matrix": (camera.cam2world @ OPENCV_TO_OPENGL).tolist(),
                "fl_x": K[0, 0],
                "fl_y": K[1, 1],
                "cx": K[0, 2],
                "cy": K[1, 2],
                "w": camera.width,
                "h": camera.height,
            }
        )
    document: dict = {"camera_model": "OPENCV", "frames": frames}
    if ply_file_path is not None:
        document["ply_file_path"] = ply_file_path
    atomic_write_text(path, json.dumps(document, indent=2))
