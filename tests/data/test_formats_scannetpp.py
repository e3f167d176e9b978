"""ScanNet++ as DUSt3R's preprocessing writes it, on a fixture written by the test in that layout."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.data.formats.scannetpp import ScanNetppPairDataset


def test_pairs_and_views(tmp_path):
    rng = np.random.default_rng(2)
    scene = "0a5c013435"
    for sub in ("images", "depth"):
        (tmp_path / scene / sub).mkdir(parents=True)
    basenames = ["DSC00001", "DSC00007"]
    depths = []
    for name in basenames:
        rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(tmp_path / scene / "images" / f"{name}.jpg")
        depth_mm = rng.integers(0, 9000, (20, 30)).astype(np.uint16)
        cv2.imwrite(str(tmp_path / scene / "depth" / f"{name}.png"), depth_mm)
        depths.append(depth_mm)
    poses = np.stack([np.eye(4), np.eye(4)])
    poses[1, :3, 3] = [0.5, 0, 0]
    np.savez(tmp_path / "all_metadata.npz", scenes=np.array([scene]), sceneids=np.array([0, 0]),
             images=np.array(basenames), intrinsics=np.stack([np.eye(3) * [25, 25, 1]] * 2),
             trajectories=poses, pairs=np.array([[1, 0, 0.6]]))
    ds = ScanNetppPairDataset(tmp_path)
    view1, view2, overlap = ds[0]
    assert len(ds) == 1 and math.isnan(overlap)
    assert view1.source.endswith("DSC00007.jpg") and view1.cam2world[0, 3] == 0.5
    torch.testing.assert_close(view2.depth, torch.from_numpy(depths[0].astype(np.float32) / 1000))
    assert torch.equal(view2.valid, torch.from_numpy(depths[0] > 0))
    assert view1.intrinsics[0, 0] == 25 and view1.image.shape == (3, 20, 30)
    with pytest.raises(ValueError, match="only 'train'"):
        ScanNetppPairDataset(tmp_path, split="test")
