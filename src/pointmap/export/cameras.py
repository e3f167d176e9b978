"""The cameras of a Scene in original-photo pixels, ready for every exporter (and cameras.json)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointmap.align.scene import Scene
from pointmap.geometry.turns import unturn_camera
from pointmap.io_utils import atomic_write_text


@dataclass
class ExportCamera:
    """One camera of a Scene, in numpy float64.

    Pixel convention as in `pointmap.geometry.cameras`: the centre of pixel column u is x = u. COLMAP and
    nerfstudio put it at u + 0.5; their exporters shift by half a pixel (`corner_origin`).

    Attributes:
        name: the image name used by COLMAP and file names (unique, relative to the photos' folder).
        image_path: the original photo, or None when there is no file to point at (video frames,
            scenes without views): `save_scene` then writes the processed colours to images/NAME.
        cam2world: (4, 4) OpenCV axes, of the original photo's camera.
        K: (3, 3) intrinsics in original-photo pixels.
        width, height: of the original photo (after EXIF orientation).
        K_processed: (3, 3) intrinsics in the network's processed-image pixels.
        processed_width, processed_height: of the processed image.
        processed_cam2world: (4, 4) of the processed image's camera: `cam2world` rolled about the optical axis
            when the photo was turned before processing (`View.quarter_turns`), `cam2world` itself otherwise.
        to_original: (3, 3) processed pixel (x, y, 1) -> original pixel.
        quarter_turns: counter-clockwise quarter turns of the photo before processing.
    """

    name: str
    image_path: str | None
    cam2world: np.ndarray
    K: np.ndarray
    width: int
    height: int
    K_processed: np.ndarray
    processed_width: int
    processed_height: int
    processed_cam2world: np.ndarray
    to_original: np.ndarray
    quarter_turns: int = 0


def corner_origin(K: np.ndarray) -> np.ndarray:
    """(3, 3) K with the principal point moved by +0.5 px: pixel centres at u + 0.5 (COLMAP, nerfstudio)."""
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    return shift @ K


def _common_folder(files: list[str | None]) -> str:
    """The deepest folder holding every existing file ("" when there is none)."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in files if p is not None]
    return os.path.commonpath(folders) if folders else ""


def _generated_name(source: str, index: int) -> str:
    """A file name for a frame that has no file of its own, e.g. "clip.mp4#frame=12" -> clip_000012.png."""
    stem, _, frame = source.partition("#frame=")
    if frame.isdigit():
        return f"{Path(stem).stem}_{int(frame):06d}.png"
    return f"image_{index:04d}.png"


def check_camera(camera: ExportCamera, index: int) -> None:
    """Raise a ValueError naming the camera when its intrinsics or pose could not be written as a camera."""
    fx, fy = camera.K[0, 0], camera.K[1, 1]
    if not (np.isfinite(fx) and np.isfinite(fy) and fx > 0 and fy > 0):
        raise ValueError(
            f"camera {index} ({camera.name}): focal length fx={fx:g}, fy={fy:g} px is not a positive finite "
            "number, so no camera file can describe it. Pass the focal or the intrinsics you know "
            "(reconstruct(..., known_focals=... or intrinsics=...), global_align(known_focals=...)), or use a "
            "trained model: such focals come from pointmaps no pinhole camera sees, e.g. an untrained network's"
        )
    if not (np.isfinite(camera.K).all() and np.isfinite(camera.cam2world).all()):
        raise ValueError(
            f"camera {index} ({camera.name}): its principal point or pose is not finite "
            f"(K={camera.K.tolist()}); check the alignment's inputs for NaN, or pass known intrinsics and poses"
        )


def export_cameras(scene: Scene) -> list[ExportCamera]:
    """The N cameras of `scene` with original-resolution intrinsics: K_orig = to_original @ K.

    Views whose `path` is not a file (video frames) or scenes without views get the processed image as
    their "original" (to_original = identity) and a generated name: the exporters then refer to the
    processed colours that `save_scene` writes to images/.

    Raises:
        ValueError naming the camera when a focal is not positive and finite, or K or the pose holds NaN
        or inf: every exporter (COLMAP, nerfstudio, glTF, cameras.json) goes through here, so none writes
        a broken file.
    """
    poses = scene.poses.detach().double().cpu().numpy()
    intrinsics = scene.intrinsics.detach().double().cpu().numpy()
    files: list[str | None] = []
    for index in range(len(scene)):
        view = scene.views[index] if scene.views is not None else None
        files.append(view.path if view is not None and os.path.isfile(view.path) else None)
    root = _common_folder(files)
    cameras = []
    for index, path in enumerate(files):
        height_p, width_p = scene.depths[index].shape[-2:]
        view = scene.views[index] if scene.views is not None else None
        turns = 0 if path is None else view.quarter_turns
        if path is None:
            name = _generated_name(view.path if view is not None else "", index)
            to_original = np.eye(3)
            height, width = height_p, width_p
        else:
            name = Path(os.path.relpath(os.path.abspath(path), root)).as_posix()
            to_original = np.asarray(view.to_original, dtype=np.float64)
            height, width = view.original_shape
        with np.errstate(invalid="ignore", over="ignore"):  # an infinite focal gives NaN: check_camera names it
            K = to_original @ intrinsics[index]
            cam2world = poses[index]
            if turns:  # the cameras of the photo file, not of the turned copy the network saw
                K, cam2world = unturn_camera(K, cam2world, width, height, turns)
                to_original, (height, width) = view.photo_map(), view.photo_shape
        cameras.append(
            ExportCamera(
                name=name,
                image_path=None if path is None else os.path.abspath(path),
                cam2world=cam2world,
                K=K,
                width=int(width),
                height=int(height),
                K_processed=intrinsics[index],
                processed_width=int(width_p),
                processed_height=int(height_p),
                processed_cam2world=poses[index],
                to_original=to_original,
                quarter_turns=turns,
            )
        )
        check_camera(cameras[-1], index)
    return cameras


def write_cameras_json(cameras: list[ExportCamera], path: str | os.PathLike, extra: list[dict] | None = None) -> None:
    """Write cameras.json: per image K, cam2world and sizes, original and processed.

    Args:
        cameras: from `export_cameras`.
        path: the .json file, written atomically.
        extra: optional per-image dicts merged into each entry (e.g. the depth PNG scale).
    """
    images = []
    for index, camera in enumerate(cameras):
        entry = {
            "name": camera.name,
            "image_path": camera.image_path,
            "cam2world": camera.cam2world.tolist(),
            "original": {"width": camera.width, "height": camera.height, "K": camera.K.tolist()},
            "processed": {
                "width": camera.processed_width,
                "height": camera.processed_height,
                "K": camera.K_processed.tolist(),
            },
            "to_original": camera.to_original.tolist(),
            "quarter_turns": camera.quarter_turns,
        }
        if extra is not None:
            entry.update(extra[index])
        images.append(entry)
    document = {
        "convention": (
            "OpenCV camera axes (x right, y down, z forward); cam2world 4x4; K in pixels with the centre "
            "of pixel column u at x = u, so the image centre is ((W - 1) / 2, (H - 1) / 2) (add 0.5 to cx, "
            "cy for COLMAP / nerfstudio); to_original maps processed pixels (x, y, 1) to original-photo pixels; "
            "quarter_turns counts the counter-clockwise quarter turns of a photo before processing (the processed "
            "camera is then cam2world rolled about its optical axis)"
        ),
        "images": images,
    }
    atomic_write_text(path, json.dumps(document, indent=2))


def read_cameras_json(path: str | os.PathLike) -> list[dict]:
    """The per-image entries of a cameras.json, with K, cam2world and to_original as numpy arrays."""
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    images = document["images"]
    for entry in images:
        entry["cam2world"] = np.asarray(entry["cam2world"], dtype=np.float64)
        entry["to_original"] = np.asarray(entry["to_original"], dtype=np.float64)
        for key in ("original", "processed"):
            entry[key]["K"] = np.asarray(entry[key]["K"], dtype=np.float64)
    return images
