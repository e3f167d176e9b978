"""Reader of ScanNet++ as DUSt3R's `datasets_preprocess/preprocess_scannetpp.py` writes it.

Layout (facts from that script and `dust3r/datasets/scannetpp.py`):

    ROOT/all_metadata.npz                        the index (see all_metadata.py); one split only
    ROOT/{scene}/images/{basename}.jpg           RGB (undistorted DSLR frames)
    ROOT/{scene}/depth/{basename}.png            uint16 depth in millimetres, 0 = unknown
"""

from __future__ import annotations

from pathlib import Path

from pointmap.data.formats.all_metadata import AllMetadataPairs


class ScanNetppPairDataset(AllMetadataPairs):
    """Pairs of preprocessed ScanNet++ (DUSt3R's preprocessing writes a training split only).

    Args:
        root: the preprocessed folder (holding all_metadata.npz).
        split: "train", the only split of the layout.
    """

    def __init__(self, root: str | Path, split: str = "train"):
        if split != "train":
            raise ValueError(f"split={split!r}; the preprocessed ScanNet++ layout has only 'train'")
        super().__init__(Path(root), "preprocess_scannetpp.py")

    def image_path(self, scene_dir: Path, basename: str) -> Path:
        return scene_dir / "images" / f"{basename}.jpg"

    def depth_path(self, scene_dir: Path, basename: str) -> Path:
        return scene_dir / "depth" / f"{basename}.png"
