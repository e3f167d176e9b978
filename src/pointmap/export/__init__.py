"""Write a Scene to the files 3D tools read: PLY, GLB, COLMAP, nerfstudio, depth maps, cameras.json."""

from __future__ import annotations

import os
from pathlib import Path

from pointmap.align.scene import Scene
from pointmap.export.cameras import export_cameras, write_cameras_json
from pointmap.export.colmap import write_colmap
from pointmap.export.depthmaps import encode_png, unique_stems, write_depth_maps
from pointmap.export.gltf import write_glb
from pointmap.export.nerfstudio import write_transforms
from pointmap.export.ply import write_ply
from pointmap.export.points import colors_uint8, gather_points
from pointmap.io_utils import atomic_write_bytes, prepare_output_dir

FORMATS = ("ply", "glb", "colmap", "nerfstudio", "depth")

__all__ = ["FORMATS", "save_scene", "write_colmap", "write_glb", "write_ply", "write_transforms"]


def _write_missing_images(scene: Scene, names: list[str], folder: Path) -> None:
    """Write the processed colours of images that have no original file as images/NAME (PNG)."""
    if scene.colors is None:
        raise ValueError("the scene has neither original photos nor colours; build it from Views or colors")
    folder.mkdir(exist_ok=True)
    for index, name in names:
        rgb = colors_uint8(scene.colors[index].detach().float().cpu().numpy())
        atomic_write_bytes(folder / name, encode_png(rgb))


def save_scene(
    scene: Scene,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    formats: tuple[str, ...] = FORMATS,
    max_colmap_points: int = 100_000,
) -> Path:
    """Write every export of `scene` into `out_dir`, each file atomically.

    Files: cameras.json (always); points.ply ("ply"); scene.glb ("glb"); colmap/sparse/0/*.bin
    ("colmap"); transforms.json ("nerfstudio"); depth/NAME.{npy,png}, confidence/NAME.npy and
    depth/README.txt ("depth"). Images without an original file (video frames) are written to
    images/NAME.png, and COLMAP / nerfstudio refer to those.

    Args:
        scene: the reconstruction.
        out_dir: the output folder; created if missing.
        overwrite: replace the files of a non-empty `out_dir`; without it such a folder is refused.
        formats: a subset of `FORMATS`.
        max_colmap_points: at most this many points3D in the COLMAP model.
    Returns:
        The output folder.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose among {list(FORMATS)}")
    cameras = export_cameras(scene)  # raises on a camera no format can describe, before anything is written
    out = prepare_output_dir(out_dir, overwrite)
    missing = [(index, camera.name) for index, camera in enumerate(cameras) if camera.image_path is None]
    if missing and ("colmap" in formats or "nerfstudio" in formats):
        _write_missing_images(scene, missing, out / "images")
    if "ply" in formats:
        cloud = gather_points(scene)
        write_ply(out / "points.ply", cloud.xyz, cloud.rgb, cloud.confidence)
    if "glb" in formats:
        write_glb(scene, out / "scene.glb")
    if "colmap" in formats:
        write_colmap(scene, out / "colmap", max_points=max_colmap_points)
    if "nerfstudio" in formats:
        image_paths = [
            camera.image_path if camera.image_path is not None else str(out / "images" / camera.name)
            for camera in cameras
        ]
        ply = "points.ply" if "ply" in formats else None
        write_transforms(scene, out / "transforms.json", image_paths=image_paths, ply_file_path=ply)
    extra = [{} for _ in cameras]
    if "depth" in formats:
        stems = unique_stems([camera.name for camera in cameras])
        scales = write_depth_maps(scene, out, stems)
        extra = [
            {"depth": f"depth/{stem}.npy", "depth_png": f"depth/{stem}.png", "depth_png_scale": scale,
             "confidence": f"confidence/{stem}.npy"}
            for stem, scale in zip(stems, scales, strict=True)
        ]
    write_cameras_json(cameras, out / "cameras.json", extra=extra)
    return out
