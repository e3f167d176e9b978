"""What the SfM stage hands to the dense stage, on disk: undistorted images, cameras, sparse depths.

`pointmap data build-real --stage sfm` runs COLMAP where pycolmap is installed and writes one folder per
scene; `--stage dense` reads it on a machine with a GPU and no pycolmap. This module imports no pycolmap.

A scene's folder:
    sfm.json   the SfmRecord: status ("done", "failed", "rejected"), SfM figures, frame origins.
    sfm.npz    names, K, cam2world, covisibility and the sparse observations of a "done" scene.
    images/    its undistorted images (PNG: lossless; JPEG: ~4x smaller, for shipping).
The folder is written whole (a temporary folder renamed into place), so a folder with sfm.json is complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pointmap.io_utils import atomic_dir

RECORD_FILE = "sfm.json"
ARRAYS_FILE = "sfm.npz"
IMAGE_DIR = "images"


@dataclass
class SfmScene:
    """The registered, undistorted images of one SfM model with their sparse geometry.

    Attributes:
        names: N image file names (in the input image folder), sorted.
        images: N (H_i, W_i, 3) uint8 undistorted RGB images.
        intrinsics: (N, 3, 3) float64 PINHOLE K in pixels of the undistorted images.
        cam2world: (N, 4, 4) float64 poses in the model's world frame (arbitrary scale).
        sparse_xy: N (M_i, 2) float32 pixel (x, y) of the image's observations of SfM points.
        sparse_depth: N (M_i,) float32 z-depth of those points in the image's camera.
        covisibility: (N, N) int64 number of SfM points seen by both images (diagonal: points seen).
        num_input: number of images given to COLMAP.
        reprojection_px: mean reprojection error of the model, in pixels of the distorted images.
    """

    names: list[str]
    images: list[np.ndarray]
    intrinsics: Tensor
    cam2world: Tensor
    sparse_xy: list[Tensor]
    sparse_depth: list[Tensor]
    covisibility: Tensor
    num_input: int
    reprojection_px: float

    @property
    def num_registered(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class SfmRecord:
    """The SfM stage's verdict and figures for one scene (sfm.json)."""

    scene: str
    source: str
    """The photo folder or video the frames came from."""
    status: Literal["done", "failed", "rejected"]
    """"done": the dense stage can run; "failed": COLMAP built no model; "rejected": an SfM quality gate."""
    reason: str | None
    num_input: int
    num_registered: int
    reprojection_px: float
    seconds: float
    """Wall time of frames, COLMAP and undistortion."""
    origins: dict[str, str] = field(default_factory=dict)
    """Image name -> where the frame came from (a photo's path, "clip.mp4#frame=30")."""

    def to_dict(self) -> dict:
        return asdict(self)


def write_sfm_state(
    folder: Path, record: SfmRecord, sfm: SfmScene | None = None, image_format: Literal["png", "jpg"] = "png",
    jpeg_quality: int = 90,
) -> None:
    """Write a scene's SfM state to `folder` (replaced whole); `sfm` is needed when record.status is "done"."""
    if record.status == "done" and sfm is None:
        raise ValueError(f"{record.scene}: a 'done' SfM record needs its SfmScene; pass sfm")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format={image_format!r}: pass 'png' (lossless) or 'jpg' (smaller)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(folder) as tmp:
        tmp.chmod(0o755)  # a temporary folder is its owner's only; the state is read by other users' jobs
        if sfm is not None:
            (tmp / IMAGE_DIR).mkdir()
            files = [f"{Path(name).stem}.{image_format}" for name in sfm.names]
            for image, file in zip(sfm.images, files, strict=True):
                options = {"quality": jpeg_quality} if image_format == "jpg" else {}
                Image.fromarray(image).save(tmp / IMAGE_DIR / file, **options)
            np.savez_compressed(
                tmp / ARRAYS_FILE,
                names=np.array(sfm.names),
                files=np.array(files),
                intrinsics=sfm.intrinsics.numpy(),
                cam2world=sfm.cam2world.numpy(),
                covisibility=sfm.covisibility.numpy(),
                sparse_counts=np.array([len(d) for d in sfm.sparse_depth], dtype=np.int64),
                sparse_xy=torch.cat(sfm.sparse_xy).numpy().astype(np.float32).reshape(-1, 2),
                sparse_depth=torch.cat(sfm.sparse_depth).numpy().astype(np.float32),
            )
        (tmp / RECORD_FILE).write_text(json.dumps(record.to_dict(), indent=1))


def read_sfm_record(folder: Path) -> SfmRecord | None:
    """The scene's SfmRecord, or None when the SfM stage has not finished it."""
    path = folder / RECORD_FILE
    return SfmRecord(**json.loads(path.read_text())) if path.is_file() else None


def read_sfm_state(folder: Path) -> tuple[SfmRecord, SfmScene]:
    """(record, scene) of a scene the SfM stage finished ("done")."""
    record = read_sfm_record(folder)
    if record is None or record.status != "done":
        state = "no sfm.json" if record is None else f"status {record.status!r}"
        raise ValueError(f"{folder}: {state}; run `build-real --stage sfm` for this scene first")
    with np.load(folder / ARRAYS_FILE) as arrays:
        data = {key: arrays[key] for key in arrays.files}
    images = []
    for file in data["files"]:
        with Image.open(folder / IMAGE_DIR / str(file)) as pil:
            images.append(np.asarray(pil.convert("RGB")))
    splits = np.cumsum(data["sparse_counts"])[:-1]
    sfm = SfmScene(
        names=[str(name) for name in data["names"]],
        images=images,
        intrinsics=torch.from_numpy(data["intrinsics"]),
        cam2world=torch.from_numpy(data["cam2world"]),
        sparse_xy=[torch.from_numpy(xy) for xy in np.split(data["sparse_xy"], splits)],
        sparse_depth=[torch.from_numpy(d) for d in np.split(data["sparse_depth"], splits)],
        covisibility=torch.from_numpy(data["covisibility"]),
        num_input=record.num_input,
        reprojection_px=record.reprojection_px,
    )
    return record, sfm
