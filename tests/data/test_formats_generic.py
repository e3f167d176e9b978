"""The generic folder format: a written scene reads back with its geometry intact."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pointmap.data.formats.generic import GenericPairDataset, write_scene, write_splits
from pointmap.data.sample import ViewSample


def _view(seed: int, size=(12, 16)) -> ViewSample:
    g = torch.Generator().manual_seed(seed)
    depth = 0.5 + 4 * torch.rand(size, generator=g)
    valid = torch.rand(size, generator=g) > 0.2
    pose = torch.eye(4)
    pose[:3, :3] = torch.linalg.qr(torch.randn(3, 3, generator=g))[0]
    pose[:3, 3] = torch.randn(3, generator=g)
    K = torch.tensor([[20.0 + seed, 0, 8.2], [0, 21.0, 5.9], [0, 0, 1]])
    image = torch.randint(0, 256, (3, *size), generator=g) / 127.5 - 1  # exactly the 8-bit levels
    return ViewSample(image=image, depth=depth * valid, valid=valid, intrinsics=K, cam2world=pose, source=f"v{seed}")


def test_round_trip(tmp_path):
    views = [("a", _view(0)), ("b", _view(1)), ("c", _view(2))]
    pairs = [("a", "b", 0.75), ("b", "c", math.nan), ("c", "a", 0.1)]
    write_scene(tmp_path, "room", views, pairs, image_format="png")
    write_scene(tmp_path, "hall", views[:2], pairs[:1], image_format="jpg")
    write_splits(tmp_path, {"train": ["room"], "test": ["hall"]})

    train = GenericPairDataset(tmp_path, split="train")
    assert len(train) == 3
    view1, view2, overlap = train[0]
    assert overlap == pytest.approx(0.75)
    assert math.isnan(train[1][2])
    for read, (_, original) in ((view1, views[0]), (view2, views[1])):
        assert torch.equal(read.valid, original.valid)
        step = original.depth.max() / 65535
        assert (read.depth - original.depth).abs().max() <= step / 2 + 1e-6
        torch.testing.assert_close(read.image, original.image, atol=1e-6, rtol=0)  # PNG is lossless
        torch.testing.assert_close(read.intrinsics, original.intrinsics)
        torch.testing.assert_close(read.cam2world, original.cam2world)

    assert len(GenericPairDataset(tmp_path, split="train", min_overlap=0.5)) == 2  # NaN overlap is kept
    assert len(GenericPairDataset(tmp_path, split="test")) == 1
    assert len(GenericPairDataset(tmp_path)) == 4  # every scene folder
    jpeg = GenericPairDataset(tmp_path, split="test")[0][0]
    # JPEG is lossy (noise images suffer most) but keeps each channel's mean (the DC terms).
    torch.testing.assert_close(jpeg.image.mean((1, 2)), views[0][1].image.mean((1, 2)), atol=0.03, rtol=0)


def test_errors_name_the_way_out(tmp_path):
    with pytest.raises(ValueError, match="names a frame not in views"):
        write_scene(tmp_path, "s", [("a", _view(0))], [("a", "z", 0.5)])
    write_scene(tmp_path, "s", [("a", _view(0)), ("b", _view(1))], [("a", "b", 0.5)])
    with pytest.raises(FileNotFoundError, match="splits.json"):
        GenericPairDataset(tmp_path, split="train")
    meta_path = tmp_path / "s" / "cameras.json"
    meta = json.loads(meta_path.read_text())
    meta["version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version 99"):
        GenericPairDataset(tmp_path)
