"""Monocular depth runners on tiny fixtures in the NYUv2, KITTI, TUM and Sintel layouts."""

import importlib.util
import math
import struct

import cv2
import numpy as np
import PIL.Image
import pytest

from pointmap.eval import run_eval
from pointmap.eval.depth import evaluate_depth
from pointmap.eval.runners.depth_datasets import associate, depth_items, read_dpt

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def write_image(path, seed: int, shape=(48, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8)).save(path)


def write_png16(path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), values.astype(np.uint16))


def ramp(shape=(48, 64)) -> np.ndarray:
    """Depth in metres growing to the right, 1 m to 3 m."""
    return np.tile(np.linspace(1.0, 3.0, shape[1]), (shape[0], 1))


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nyuv2")
    for k in range(2):
        write_image(root / "rgb" / f"{k:05d}.png", seed=k)
        write_png16(root / "depth" / f"{k:05d}.png", ramp() * 1000)
    write_image(root / "rgb" / "99999.png", seed=9)  # no depth: not evaluated
    return root


@pytest.fixture(scope="module")
def tum_root(tmp_path_factory):
    """One sequence: frames at 0.00 and 0.10 s have depth within 20 ms; 0.20 s has none."""
    root = tmp_path_factory.mktemp("tum")
    sequence = root / "rgbd_dataset_freiburg1_desk"
    half = np.ones((48, 64))
    half[:, 32:] = 2.0  # left half at 1 m, right half at 2 m
    colour, depth = ["# timestamp filename"], ["# timestamp filename"]
    for k, stamp in enumerate((0.0, 0.1, 0.2)):
        write_image(sequence / "rgb" / f"{stamp:.6f}.png", seed=k)
        colour.append(f"{stamp:.6f} rgb/{stamp:.6f}.png")
    for stamp in (0.005, 0.115, 0.5):
        write_png16(sequence / "depth" / f"{stamp:.6f}.png", half * 5000)
        depth.append(f"{stamp:.6f} depth/{stamp:.6f}.png")
    (sequence / "rgb.txt").write_text("\n".join(colour) + "\n")
    (sequence / "depth.txt").write_text("\n".join(depth) + "\n")
    return root


def test_nyu_reader_applies_the_eigen_crop(nyu_root):
    items = depth_items("nyuv2", nyu_root)
    assert [name for name, *_ in items] == ["nyuv2/00000", "nyuv2/00001"]
    depth, valid = items[0][3]()
    np.testing.assert_allclose(depth, ramp(), atol=1e-3)
    # Eigen crop rows 45..470 and columns 41..600 of 480 x 640, scaled to 48 x 64: rows 4..46, columns 4..59.
    assert valid[4:47, 4:60].all() and valid.sum() == 43 * 56
    assert len(depth_items("nyuv2", nyu_root, max_images=1)) == 1


def test_tum_association_and_hand_computed_scores(tum_root):
    assert associate([(0.0, "a"), (0.2, "b")], [(0.019, "x"), (0.25, "y")]) == [("a", "x")]
    items = depth_items("tum", tum_root)
    assert [name for name, *_ in items] == ["rgbd_dataset_freiburg1_desk/0.000000",
                                           "rgbd_dataset_freiburg1_desk/0.100000"]

    def flat(path):
        return np.full((48, 64), 4.0)

    result = evaluate_depth("tum", {"flat": flat}, items, verbose=False)
    # Median scaling puts the flat map at 1.5 m: AbsRel (0.5 / 1 + 0.5 / 2) / 2, and no pixel within 1.25.
    row = result.summary[0]
    assert (row["group"], row["images"]) == ("rgbd_dataset_freiburg1_desk", 2)
    assert row["abs_rel"] == pytest.approx(0.375) and row["delta_1.25"] == 0.0
    assert [r["group"] for r in result.summary] == ["rgbd_dataset_freiburg1_desk", "all"]


def test_kitti_and_sintel_layouts_score_the_oracle_perfectly(tmp_path):
    kitti = tmp_path / "kitti"
    write_image(kitti / "image" / "0000000005.png", seed=1)
    sparse = np.zeros((48, 64))
    sparse[::3, ::2] = ramp()[::3, ::2] * 256 * 10  # LiDAR-like: most pixels unknown
    write_png16(kitti / "depth" / "0000000005.png", sparse)
    sintel = tmp_path / "sintel"
    write_image(sintel / "training" / "final" / "alley_1" / "frame_0001.png", seed=2)
    dpt = sintel / "training" / "depth" / "alley_1" / "frame_0001.dpt"
    dpt.parent.mkdir(parents=True)
    dpt.write_bytes(struct.pack("<fii", 202021.25, 64, 48) + (ramp() * 7).astype("<f4").tobytes())
    np.testing.assert_allclose(read_dpt(dpt), ramp() * 7, rtol=1e-6)
    for benchmark, root in (("kitti", kitti), ("sintel", sintel)):
        result = run_eval(benchmark, data=root, methods=["oracle"], verbose=False)
        row = result.summary[-1]
        assert row["images"] == 1 and row["abs_rel"] == pytest.approx(0, abs=1e-6) and row["delta_1.25"] == 1.0
    depth, valid = depth_items("kitti", kitti)[0][3]()
    assert depth.max() == pytest.approx(10 * ramp()[0, 62], rel=1e-4) and not valid[0].any()  # above the Garg crop


def test_pointmap_monocular_depth_on_nyu(tiny_model, nyu_root, tmp_path):
    result = run_eval("nyuv2", data=nyu_root, out=tmp_path, model=tiny_model, methods=["pointmap", "oracle"],
                      verbose=False)
    rows = {row["method"]: row for row in result.summary}
    assert rows["pointmap"]["images"] == 2 and rows["pointmap"]["failed"] == 0
    assert math.isfinite(rows["pointmap"]["abs_rel"]) and 0 <= rows["pointmap"]["delta_1.25"] <= 1
    assert rows["oracle"]["abs_rel"] == pytest.approx(0, abs=1e-6) and rows["oracle"]["tau_1.03"] == 1.0
    assert (tmp_path / "abs_rel.png").is_file() or not HAS_MATPLOTLIB


def test_depth_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data"):
        depth_items("nyuv2", tmp_path / "absent")
    with pytest.raises(ValueError, match="unknown"):
        depth_items("ddad", tmp_path)
