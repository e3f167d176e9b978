"""ARKitScenes as DUSt3R's preprocessing writes it, on a fixture written by the test in that layout."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.data.formats.arkitscenes import ArkitScenesPairDataset


@pytest.fixture
def arkit_root(tmp_path):
    rng = np.random.default_rng(1)
    split = tmp_path / "Training"
    scenes, images, sceneids, intrinsics, poses, depths = ["41069025", "42445173"], [], [], [], [], {}
    for scene_id, scene in enumerate(scenes):
        for sub in ("vga_wide", "lowres_depth"):
            (split / scene / sub).mkdir(parents=True)
        for k in range(3):
            basename = f"{scene}_{1000 + k}.123.png"
            Image.fromarray(rng.integers(0, 255, (18, 24, 3), dtype=np.uint8)).save(
                split / scene / "vga_wide" / basename.replace(".png", ".jpg"))
            depth_mm = rng.integers(0, 5000, (18, 24)).astype(np.uint16)
            cv2.imwrite(str(split / scene / "lowres_depth" / basename), depth_mm)
            depths[len(images)] = depth_mm
            images.append(basename)
            sceneids.append(scene_id)
            intrinsics.append([[20.0 + k, 0, 12], [0, 20.0 + k, 9], [0, 0, 1]])
            pose = np.eye(4)
            pose[:3, 3] = [scene_id, k, 0]
            poses.append(pose)
    # pairs are global image indices plus a score column, as the preprocessing stores them
    pairs = np.array([[0, 1, 0.9], [1, 2, 0.5], [3, 5, 0.7]])
    np.savez(split / "all_metadata.npz", scenes=np.array(scenes), sceneids=np.array(sceneids),
             images=np.array(images), intrinsics=np.array(intrinsics), trajectories=np.array(poses),
             pairs=pairs, counts=np.array([0, 3]))
    return tmp_path, depths


def test_pairs_and_views(arkit_root):
    root, depths = arkit_root
    ds = ArkitScenesPairDataset(root, split="train")
    assert len(ds) == 3
    view1, view2, overlap = ds[2]  # images 3 and 5: the second scene
    assert math.isnan(overlap)
    assert "42445173" in view1.source and view1.source.endswith("_1000.123.jpg")
    torch.testing.assert_close(view1.depth, torch.from_numpy(depths[3].astype(np.float32) / 1000))
    assert torch.equal(view1.valid, torch.from_numpy(depths[3] > 0))
    assert view2.intrinsics[0, 0] == 22.0 and view2.cam2world[:3, 3].tolist() == [1.0, 2.0, 0.0]
    assert view1.image.shape == (3, 18, 24)


def test_unknown_split_and_missing_metadata(arkit_root, tmp_path):
    with pytest.raises(ValueError, match="split='val'"):
        ArkitScenesPairDataset(arkit_root[0], split="val")
    with pytest.raises(FileNotFoundError, match="preprocess_arkitscenes.py"):
        ArkitScenesPairDataset(tmp_path / "nothing", split="test")
