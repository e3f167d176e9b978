"""Pairs of the layouts DUSt3R's preprocessing indexes in one `all_metadata.npz` (ARKitScenes, ScanNet++).

The index holds, per image i: `sceneids[i]` (into `scenes`, the scene folder names), `images[i]`
(a basename), `intrinsics[i]` (3, 3), `trajectories[i]` (4, 4) cam2world in OpenCV axes; and `pairs`
(P, >= 2) of global image indices. Each dataset says where an image and its depth (16-bit PNG in
millimetres, 0 = unknown) live inside the scene folder.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from pointmap.data.formats.files import read_png16, read_rgb
from pointmap.data.sample import ViewSample


class AllMetadataPairs(ABC):
    """Base reader: subclasses set `image_path` and `depth_path` for their layout.

    Args:
        folder: the folder holding all_metadata.npz and the scene folders.
        script: the DUSt3R preprocessing script that writes the layout (named in errors).
    Items: `ds[i] -> (view1, view2, overlap)`; overlap is NaN (the index does not record it).
    """

    def __init__(self, folder: Path, script: str):
        self.folder = Path(folder)
        meta_path = self.folder / "all_metadata.npz"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: missing; point root at the output of DUSt3R's {script}")
        with np.load(meta_path) as meta:
            self.scenes = [str(s) for s in meta["scenes"]]
            self.scene_ids = meta["sceneids"].astype(np.int64)
            self.images = [str(s) for s in meta["images"]]
            self.intrinsics = torch.from_numpy(meta["intrinsics"].astype(np.float32))
            self.cam2world = torch.from_numpy(meta["trajectories"].astype(np.float32))
            self.pairs = meta["pairs"][:, :2].astype(np.int64)
        if len(self.pairs) == 0:
            raise ValueError(f"{meta_path}: holds no pairs")

    @abstractmethod
    def image_path(self, scene_dir: Path, basename: str) -> Path:
        """Where image `basename` of a scene lives."""

    @abstractmethod
    def depth_path(self, scene_dir: Path, basename: str) -> Path:
        """Where the depth PNG of image `basename` lives."""

    def __len__(self) -> int:
        return len(self.pairs)

    def view(self, image_index: int) -> ViewSample:
        """Load one image (a global index into all_metadata.npz) as a ViewSample."""
        scene_dir = self.folder / self.scenes[self.scene_ids[image_index]]
        basename = self.images[image_index]
        image_path = self.image_path(scene_dir, basename)
        image = read_rgb(image_path)
        depth = torch.from_numpy(read_png16(self.depth_path(scene_dir, basename)).astype(np.float32) / 1000)
        return ViewSample(image=image, depth=depth, valid=depth > 0, intrinsics=self.intrinsics[image_index].clone(),
                          cam2world=self.cam2world[image_index].clone(), source=str(image_path))

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        index1, index2 = self.pairs[index]
        return self.view(int(index1)), self.view(int(index2)), math.nan
