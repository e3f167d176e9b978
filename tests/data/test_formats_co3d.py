"""CO3Dv2 as DUSt3R's preprocessing writes it, on a fixture written by the test in that layout."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.data.formats.co3d import Co3dPairDataset


def _write_frame(folder, index, rng):
    """One frame: jpg, npz (K, cam2world, maximum_depth), 16-bit depth PNG, 8-bit mask."""
    height, width = 24, 32
    stem = f"frame{index:06d}"
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(folder / "images" / f"{stem}.jpg")
    depth = rng.uniform(1.0, 3.0, (height, width)).astype(np.float32)
    depth[0, :] = 0  # no depth on the first row
    max_depth = depth.max()
    cv2.imwrite(str(folder / "depths" / f"{stem}.jpg.geometric.png"), (depth / max_depth * 65535).astype(np.uint16))
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 2] = 255  # the object covers the left half
    cv2.imwrite(str(folder / "masks" / f"{stem}.png"), mask)
    K = np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]], np.float32)
    pose = np.eye(4, dtype=np.float32)
    pose[:3, 3] = [index, 0, 0]
    np.savez(folder / "images" / f"{stem}.npz", camera_intrinsics=K, camera_pose=pose, maximum_depth=max_depth)
    return depth


@pytest.fixture
def co3d_root(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "apple" / "110_13051_23361"
    for sub in ("images", "depths", "masks"):
        (folder / sub).mkdir(parents=True)
    frame_ids = list(range(0, 24, 2))  # 12 frames, as a subsampled sequence lists them
    depths = {i: _write_frame(folder, i, rng) for i in frame_ids}
    (tmp_path / "selected_seqs_train.json").write_text(json.dumps({"apple": {"110_13051_23361": frame_ids}}))
    return tmp_path, depths


def test_pairs_and_views(co3d_root):
    root, depths = co3d_root
    ds = Co3dPairDataset(root, split="train")
    # positions 0..11: offset 5 gives 7 pairs, offset 10 gives 2, larger offsets none
    assert len(ds) == 9
    assert ds.pairs[0][2:] == (0, 10) and ds.pairs[-1][2:] == (12, 22)
    view1, view2, overlap = ds[0]
    assert math.isnan(overlap)
    assert view1.image.shape == (3, 24, 32) and view1.image.min() >= -1 and view1.image.max() <= 1
    expected = torch.from_numpy(depths[0])
    object_pixels = view1.valid
    assert not object_pixels[:, 16:].any() and not object_pixels[0].any() and object_pixels[1:, :16].all()
    step = float(expected.max()) / 65535
    assert (view1.depth[object_pixels] - expected[object_pixels]).abs().max() <= step
    assert view2.cam2world[0, 3] == 10.0 and view1.intrinsics[0, 0] == 30.0

    unmasked = Co3dPairDataset(root, split="train", mask_background=False)[0][0]
    assert unmasked.valid[1:].all()


def test_missing_listing_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="preprocess_co3d.py"):
        Co3dPairDataset(tmp_path, split="test")
