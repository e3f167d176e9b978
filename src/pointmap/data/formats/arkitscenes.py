"""Reader of ARKitScenes as DUSt3R's `datasets_preprocess/preprocess_arkitscenes.py` writes it.

Layout (facts from that script and `dust3r/datasets/arkitscenes.py`):

    ROOT/{Training|Test}/all_metadata.npz   scenes (S,) folder names, sceneids (N,) index into scenes,
                                            images (N,) basenames "*.png", intrinsics (N, 3, 3),
                                            trajectories (N, 4, 4) cam2world (OpenCV axes, images
                                            rotated upright), pairs (P, >=2) global image indices
    ROOT/{split}/{scene}/vga_wide/{basename with .jpg}    RGB
    ROOT/{split}/{scene}/lowres_depth/{basename}          uint16 depth in millimetres, 0 = unknown
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from pointmap.data.formats.files import read_png16, read_rgb
from pointmap.data.sample import ViewSample

SPLIT_FOLDERS = {"train": "Training", "test": "Test"}


class ArkitScenesPairDataset:
    """Pairs of preprocessed ARKitScenes (the pairs DUSt3R's preprocessing selected).

    Args:
        root: the preprocessed folder (holding Training/ and Test/).
        split: "train" or "test".
    Items: `ds[i] -> (view1, view2, overlap)`; overlap is NaN (not recorded by the layout).
    """

    def __init__(self, root: str | Path, split: str = "train"):
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"split={split!r}; ARKitScenes has {sorted(SPLIT_FOLDERS)}")
        self.folder = Path(root) / SPLIT_FOLDERS[split]
        meta_path = self.folder / "all_metadata.npz"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path}: missing; point root at the output of DUSt3R's preprocess_arkitscenes.py"
            )
        with np.load(meta_path) as meta:
            self.scenes = [str(s) for s in meta["scenes"]]
            self.scene_ids = meta["sceneids"].astype(np.int64)
            self.images = [str(s) for s in meta["images"]]
            self.intrinsics = torch.from_numpy(meta["intrinsics"].astype(np.float32))
            self.cam2world = torch.from_numpy(meta["trajectories"].astype(np.float32))
            self.pairs = meta["pairs"][:, :2].astype(np.int64)
        if len(self.pairs) == 0:
            raise ValueError(f"{meta_path}: holds no pairs")

    def __len__(self) -> int:
        return len(self.pairs)

    def view(self, image_index: int) -> ViewSample:
        """Load one image (a global index into all_metadata.npz) as a ViewSample."""
        scene_dir = self.folder / self.scenes[self.scene_ids[image_index]]
        basename = self.images[image_index]
        image_path = scene_dir / "vga_wide" / basename.replace(".png", ".jpg")
        image = read_rgb(image_path)
        depth = torch.from_numpy(read_png16(scene_dir / "lowres_depth" / basename).astype(np.float32) / 1000)
        return ViewSample(image=image, depth=depth, valid=depth > 0, intrinsics=self.intrinsics[image_index].clone(),
                          cam2world=self.cam2world[image_index].clone(), source=str(image_path))

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        index1, index2 = self.pairs[index]
        return self.view(int(index1)), self.view(int(index2)), math.nan
