"""A COLMAP sparse model (cameras, images, points3D) of a Scene, in original-photo pixels, via pycolmap."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pointmap.align.scene import Scene
from pointmap.export.cameras import corner_origin, export_cameras
from pointmap.export.points import gather_points
from pointmap.io_utils import atomic_dir


def _import_pycolmap():
    try:
        import pycolmap
    except ImportError as err:
        raise ImportError("COLMAP export needs pycolmap; install it with `pip install pointmap[export]`") from err
    return pycolmap


def write_colmap(scene: Scene, folder: str | os.PathLike, max_points: int = 100_000, seed: int = 0) -> Path:
    """Write `folder`/sparse/0/{cameras,images,points3D}.bin (and pycolmap's rigs.bin, frames.bin).

    One PINHOLE camera per image at the original photo's resolution, images named as the original files
    (relative to their common folder: pass that folder as COLMAP's or a splatting tool's image path), and
    a random subset of the confident points, each with its colour and a one-element track: the image it
    came from and its pixel there, so that Gaussian-splatting tools can initialise from points3D.bin.

    Args:
        scene: the reconstruction; its masks select the points.
        folder: the COLMAP project folder (created if missing).
        max_points: at most this many points3D.
        seed: the random subset's seed.
    Returns:
        The sparse/0 folder.
    """
    pycolmap = _import_pycolmap()
    cameras = export_cameras(scene)
    cloud = gather_points(scene)
    if len(cloud) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(cloud), size=max_points, replace=False))
        cloud = cloud.subset(keep)

    reconstruction = pycolmap.Reconstruction()
    for index, camera in enumerate(cameras):
        K = corner_origin(camera.K)
        ident = index + 1  # COLMAP ids start at 1
        reconstruction.add_camera_with_trivial_rig(
            pycolmap.Camera(
                model="PINHOLE",
                width=camera.width,
                height=camera.height,
                params=[K[0, 0], K[1, 1], K[0, 2], K[1, 2]],
                camera_id=ident,
            )
        )
        in_image = cloud.image_index == index
        pixels = np.concatenate([cloud.pixel[in_image], np.ones((in_image.sum(), 1))], axis=-1)  # (M_i, 3)
        keypoints = (pixels @ camera.to_original.T)[:, :2] + 0.5  # COLMAP's pixel centres are at u + 0.5
        image = pycolmap.Image(name=camera.name, keypoints=keypoints, camera_id=ident, image_id=ident)
        # The only world-to-camera conversion of the project: COLMAP stores cam_from_world.
        cam_from_world = np.linalg.inv(camera.cam2world)[:3, :]
        reconstruction.add_image_with_trivial_frame(image, pycolmap.Rigid3d(cam_from_world))

    # Point k of image i is keypoint number (k - first point of image i) there, as built above.
    first = np.searchsorted(cloud.image_index, np.arange(len(cameras)))
    for k in range(len(cloud)):
        index = int(cloud.image_index[k])
        track = pycolmap.Track([pycolmap.TrackElement(index + 1, int(k - first[index]))])
        reconstruction.add_point3D(cloud.xyz[k].astype(np.float64), track, cloud.rgb[k])

    sparse = Path(folder) / "sparse" / "0"
    sparse.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(sparse) as tmp:
        reconstruction.write_binary(str(tmp))
    return sparse
