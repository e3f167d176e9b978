"""The ScanNet-1500 runner on a tiny fixture in LoFTR's release layout."""

import math

import cv2
import numpy as np
import PIL.Image
import pytest
from scipy.spatial.transform import Rotation

from pointmap.eval import run_eval
from pointmap.eval.runners.scannet1500 import scannet1500_pairs

K = np.array([[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def scannet_root(tmp_path_factory):
    """scene0707_00 with frames 0, 15, 30 (depth at half resolution, as a sensor grid); pairs (0, 15), (15, 30)."""
    root = tmp_path_factory.mktemp("scannet1500")
    scene = root / "scene0707_00"
    poses = {}
    for k, frame in enumerate((0, 15, 30)):
        for folder in ("color", "depth", "pose"):
            (scene / folder).mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(frame).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        PIL.Image.fromarray(pixels).save(scene / "color" / f"{frame}.jpg")
        depth_mm = np.full((24, 32), 1500 + 100 * k, dtype=np.uint16)
        depth_mm[0, 0] = 0  # a hole
        cv2.imwrite(str(scene / "depth" / f"{frame}.png"), depth_mm)
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_euler("y", 10 * k, degrees=True).as_matrix()
        pose[:3, 3] = [0.3 * k, 0.0, 0.1 * k]
        np.savetxt(scene / "pose" / f"{frame}.txt", pose)
        poses[frame] = pose
    np.savez(root / "test.npz", name=np.array([[707, 0, 0, 15], [707, 0, 15, 30]]))
    np.savez(root / "intrinsics.npz", scene0707_00=K)
    return root, poses


def test_reader_gives_views_with_ground_truth(scannet_root):
    root, poses = scannet_root
    items = list(scannet1500_pairs(root))
    assert [name for name, *_ in items] == ["scene0707_00/0-15", "scene0707_00/15-30"]
    _, group, view1, view2, _ = items[1]
    assert group == "all" and view1.image.shape == (3, 48, 64)
    np.testing.assert_allclose(view1.cam2world.numpy(), poses[15], atol=1e-6)
    np.testing.assert_allclose(view2.intrinsics.numpy(), K)
    assert view1.depth.shape == (48, 64) and float(view1.depth[10, 10]) == pytest.approx(1.6)
    assert not bool(view1.valid[0, 0]) and not bool(view1.valid[1, 1]) and bool(view1.valid[2, 2])
    assert len(list(scannet1500_pairs(root, max_pairs=1))) == 1


def test_scannet_eval_oracle_perfect_sift_counted(scannet_root, tmp_path):
    root, _ = scannet_root
    result = run_eval("scannet1500", data=root, out=tmp_path, methods=["oracle", "sift"], verbose=False)
    rows = {row["method"]: row for row in result.summary}
    assert [(row["method"], row["group"]) for row in result.summary] == [("oracle", "all"), ("sift", "all")]
    assert rows["oracle"]["pairs"] == 2 and rows["oracle"]["auc@5"] == pytest.approx(100, abs=1e-3)
    assert rows["oracle"]["abs_rel"] == pytest.approx(0, abs=1e-6)
    assert rows["sift"]["pairs"] == 2 and math.isnan(rows["sift"]["abs_rel"])
    assert (tmp_path / "results.md").is_file()


def test_scannet_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="LoFTR"):
        list(scannet1500_pairs(tmp_path))


def test_pointmap_methods_use_the_given_model(scannet_root, tiny_model, monkeypatch):
    """pointmap-matched alone (no plain pointmap among the methods) still runs the model it is given, not the
    bundled one, through analyze_pair with feature matches."""
    import pointmap.eval.methods
    import pointmap.two_view

    root, _ = scannet_root
    calls = []
    analyze = pointmap.two_view.analyze_pair
    monkeypatch.setattr(pointmap.eval.methods, "analyze_pair",
                        lambda model, *views, **options: calls.append((model, options["matcher"]))
                        or analyze(model, *views, **options))
    result = run_eval("scannet1500", data=root, model=tiny_model, methods=["pointmap-matched"], size=224,
                      verbose=False)
    assert [row["method"] for row in result.summary] == ["pointmap-matched"]
    assert result.summary[0]["pairs"] == 2
    assert calls == [(tiny_model, "xfeat")] * 2
