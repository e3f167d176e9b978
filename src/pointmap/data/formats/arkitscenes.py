"""Reader of ARKitScenes as DUSt3R's `datasets_preprocess/preprocess_arkitscenes.py` writes it.

Layout (facts from that script and `dust3r/datasets/arkitscenes.py`):

    ROOT/{Training|Test}/all_metadata.npz                 the index (see all_metadata.py); images are
                                                          rotated upright, poses follow the rotation
    ROOT/{split}/{scene}/vga_wide/{basename with .jpg}    RGB
    ROOT/{split}/{scene}/lowres_depth/{basename}          uint16 depth in millimetres, 0 = unknown
"""

from __future__ import annotations

from pathlib import Path

from pointmap.data.formats.all_metadata import AllMetadataPairs

SPLIT_FOLDERS = {"train": "Training", "test": "Test"}


class ArkitScenesPairDataset(AllMetadataPairs):
    """Pairs of preprocessed ARKitScenes (the pairs DUSt3R's preprocessing selected).

    Args:
        root: the preprocessed folder (holding Training/ and Test/).
        split: "train" or "test".
    """

    def __init__(self, root: str | Path, split: str = "train"):
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"split={split!r}; ARKitScenes has {sorted(SPLIT_FOLDERS)}")
        super().__init__(Path(root) / SPLIT_FOLDERS[split], "preprocess_arkitscenes.py")

    def image_path(self, scene_dir: Path, basename: str) -> Path:
        return scene_dir / "vga_wide" / basename.replace(".png", ".jpg")

    def depth_path(self, scene_dir: Path, basename: str) -> Path:
        return scene_dir / "lowres_depth" / basename
