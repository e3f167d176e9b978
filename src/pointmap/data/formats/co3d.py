"""Reader of CO3Dv2 as DUSt3R's `datasets_preprocess/preprocess_co3d.py` writes it.

Layout (facts from that script and `dust3r/datasets/co3d.py`):

    ROOT/selected_seqs_{split}.json          {category: {sequence: [frame index, ...]}}
    ROOT/{category}/{sequence}/images/frame{index:06d}.jpg    RGB, cropped about the principal point
    ROOT/{category}/{sequence}/images/frame{index:06d}.npz    camera_intrinsics (3, 3),
                                              camera_pose (4, 4) cam2world in OpenCV axes, maximum_depth
    ROOT/{category}/{sequence}/depths/frame{index:06d}.jpg.geometric.png
                                              uint16, depth = value / 65535 * maximum_depth
    ROOT/{category}/{sequence}/masks/frame{index:06d}.png     object mask, uint8 (foreground > 0.1 * 255)

Pairs follow DUSt3R's choice for these 360-degree object captures: frames whose positions in the
sequence differ by a multiple of 5, up to 30 (about 5 to 90 degrees apart for 100 frames).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from pointmap.data.formats.files import read_mask, read_png16, read_rgb
from pointmap.data.sample import ViewSample


class Co3dPairDataset:
    """Pairs of preprocessed CO3Dv2 sequences.

    Args:
        root: the preprocessed folder (holding selected_seqs_{split}.json).
        split: "train" or "test".
        mask_background: keep depth only on the object (as DUSt3R trains by default).
        offsets: differences of frame positions that make a pair.
    Items: `ds[i] -> (view1, view2, overlap)`; overlap is NaN (the layout does not record it).
    """

    def __init__(self, root: str | Path, split: str = "train", mask_background: bool = True,
                 offsets: tuple[int, ...] = (5, 10, 15, 20, 25, 30)):
        self.root = Path(root)
        listing = self.root / f"selected_seqs_{split}.json"
        if not listing.is_file():
            raise FileNotFoundError(
                f"{listing}: missing; point root at the output of DUSt3R's preprocess_co3d.py (split={split!r})"
            )
        self.mask_background = mask_background
        self.pairs: list[tuple[str, str, int, int]] = []  # (category, sequence, frame index 1, frame index 2)
        for category, sequences in sorted(json.loads(listing.read_text()).items()):
            for sequence, frame_ids in sorted(sequences.items()):
                for pos1 in range(len(frame_ids)):
                    for offset in offsets:
                        if pos1 + offset < len(frame_ids):
                            self.pairs.append((category, sequence, frame_ids[pos1], frame_ids[pos1 + offset]))
        if not self.pairs:
            raise ValueError(f"{listing}: lists no sequence with two frames {min(offsets)} or more apart")

    def __len__(self) -> int:
        return len(self.pairs)

    def view(self, category: str, sequence: str, frame_id: int) -> ViewSample:
        """Load one frame as a ViewSample."""
        folder = self.root / category / sequence
        stem = f"frame{frame_id:06d}"
        meta_path = folder / "images" / f"{stem}.npz"
        with np.load(meta_path) as meta:
            intrinsics = torch.from_numpy(meta["camera_intrinsics"].astype(np.float32))
            cam2world = torch.from_numpy(meta["camera_pose"].astype(np.float32))
            max_depth = float(np.nan_to_num(meta["maximum_depth"]))
        image = read_rgb(folder / "images" / f"{stem}.jpg")
        depth_png = read_png16(folder / "depths" / f"{stem}.jpg.geometric.png")
        depth = torch.from_numpy(depth_png.astype(np.float32) / 65535 * max_depth)
        valid = depth > 0
        if self.mask_background:
            valid &= torch.from_numpy(read_mask(folder / "masks" / f"{stem}.png").astype(np.float32) / 255 > 0.1)
        return ViewSample(image=image, depth=depth * valid, valid=valid, intrinsics=intrinsics,
                          cam2world=cam2world, source=str(folder / "images" / f"{stem}.jpg"))

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        category, sequence, frame1, frame2 = self.pairs[index]
        return self.view(category, sequence, frame1), self.view(category, sequence, frame2), math.nan
