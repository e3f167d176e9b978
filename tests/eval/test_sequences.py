"""Multi-view pose runners on tiny fixtures written in the CO3Dv2 and RealEstate10K layouts."""

import gzip
import importlib.util
import json
import math

import numpy as np
import PIL.Image
import pytest
from scipy.spatial.transform import Rotation

from pointmap.data.synthetic import make_scene
from pointmap.data.synthetic.dataset import scene_seed
from pointmap.eval import run_eval
from pointmap.eval.runners.co3d import Co3dEvalConfig, co3d_sequences, viewpoint_to_cam2world
from pointmap.eval.runners.realestate10k import RealEstate10kEvalConfig, realestate10k_sequences
from pointmap.eval.sequences import (
    PointmapSequences,
    choose_frames,
    depth_errors,
    evaluate_sequences,
    true_depth_path,
)
from pointmap.eval.synthetic_rooms import SyntheticRoomsConfig, held_out_rooms

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def ring_poses(num: int, seed: int) -> np.ndarray:
    """(num, 4, 4) OpenCV cam2world on a circle, looking roughly inwards, with some jitter."""
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (num, 1, 1))
    for k in range(num):
        angle = 2 * math.pi * k / num
        poses[k, :3, :3] = Rotation.from_euler("yx", [-angle, rng.uniform(-0.1, 0.1)]).as_matrix()
        poses[k, :3, 3] = [3 * math.sin(angle), rng.uniform(-0.2, 0.2), -3 * math.cos(angle)]
    return poses


def write_image(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path)


def write_jgz(path, data) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        json.dump(data, stream)


def pytorch3d_viewpoint(cam2world: np.ndarray) -> dict:
    """CO3D's (R, T) of an OpenCV camera: x_cam = x_world @ R + T with x left and y up."""
    world2cam = np.linalg.inv(cam2world)
    flip = np.diag([-1.0, -1.0, 1.0])
    return {"R": (world2cam[:3, :3].T @ flip).tolist(), "T": (flip @ world2cam[:3, 3]).tolist(),
            "focal_length": [2.0, 2.0], "principal_point": [0.0, 0.0], "intrinsics_format": "ndc_isotropic"}


@pytest.fixture(scope="module")
def co3d_root(tmp_path_factory):
    """Category "toy": test sequences good (8 frames, one with a broken camera), blurry (quality 0.2),
    short (3 frames); "trainseq" is listed for training only."""
    root = tmp_path_factory.mktemp("co3d")
    category = root / "toy"
    frames, set_list = [], {"train": [], "val": [], "test": []}
    truth = {}
    for name, count, split in (("good", 8, "test"), ("blurry", 8, "test"), ("short", 3, "test"),
                               ("trainseq", 8, "train")):
        poses = ring_poses(count, seed=len(name))
        truth[name] = poses
        for number in range(1, count + 1):
            rel = f"toy/{name}/images/frame{number:06d}.jpg"
            write_image(root / rel, seed=number)
            viewpoint = pytorch3d_viewpoint(poses[number - 1])
            if name == "good" and number == 4:
                viewpoint["T"] = [1e6, 0.0, 0.0]  # a broken annotation: dropped
            frames.append({"sequence_name": name, "frame_number": number, "image": {"path": rel, "size": [48, 64]},
                           "viewpoint": viewpoint})
            set_list[split].append([name, number, rel])
    (category / "set_lists").mkdir(parents=True)
    (category / "set_lists" / "set_lists_fewview_dev.json").write_text(json.dumps(set_list))
    write_jgz(category / "frame_annotations.jgz", frames)
    write_jgz(category / "sequence_annotations.jgz", [
        {"sequence_name": n, "category": "toy", "viewpoint_quality_score": 0.2 if n == "blurry" else 0.9}
        for n in truth
    ])
    return root, truth


def test_pytorch3d_viewpoints_become_opencv_cam2world():
    # Identity PyTorch3D camera: x left, y up, so OpenCV's x (right) and y (down) are world -x and -y.
    np.testing.assert_allclose(viewpoint_to_cam2world(np.eye(3), np.zeros(3)), np.diag([-1.0, -1.0, 1.0, 1.0]))
    R = Rotation.from_rotvec([0.2, -0.5, 0.9]).as_matrix()
    T = np.array([0.3, -1.0, 2.0])
    cam2world = viewpoint_to_cam2world(R, T)
    np.testing.assert_allclose(cam2world[:3, 3], -T @ R.T, atol=1e-12)  # PyTorch3D's centre -T R^T
    # The optical axis (OpenCV and PyTorch3D z) is the third row of R in world coordinates.
    np.testing.assert_allclose(cam2world[:3, 2], R[:, 2], atol=1e-12)


def test_co3d_reader_applies_the_protocol_filters(co3d_root):
    root, truth = co3d_root
    sequences = co3d_sequences(root, Co3dEvalConfig(frames=5, min_frames=5))
    assert [(name, category) for name, category, _, _ in sequences] == [("good", "toy")]
    _, _, paths, poses = sequences[0]
    numbers = [int(p.split("frame")[1][:6]) for p in paths]
    assert len(numbers) == 5 and 4 not in numbers and numbers == sorted(numbers)
    np.testing.assert_allclose(poses, truth["good"][np.array(numbers) - 1], atol=1e-9)
    again = co3d_sequences(root, Co3dEvalConfig(frames=5, min_frames=5))
    assert again[0][2] == paths  # the frame sampling is seeded
    with pytest.raises(ValueError, match="min_frames"):
        co3d_sequences(root, Co3dEvalConfig(frames=5, min_frames=50))
    with pytest.raises(FileNotFoundError, match="CO3Dv2"):
        co3d_sequences(root, Co3dEvalConfig(categories=("missing",)))


def test_choose_frames_is_seeded_and_distinct():
    first = choose_frames(30, 10, seed=0, name="a")
    assert first == choose_frames(30, 10, seed=0, name="a") and len(set(first)) == 10
    assert first != choose_frames(30, 10, seed=1, name="a")
    with pytest.raises(ValueError, match="fewer"):
        choose_frames(3, 10, seed=0, name="a")


def test_co3d_eval_oracle_is_perfect_and_colmap_failures_count(co3d_root, tmp_path):
    root, _ = co3d_root
    result = run_eval("co3d", data=root, out=tmp_path, methods=["oracle", "colmap"], frames=4,
                      min_frames=5, verbose=False)
    rows = {(row["method"], row["group"]): row for row in result.summary}
    assert set(rows) == {("oracle", "toy"), ("oracle", "all"), ("colmap", "toy"), ("colmap", "all")}
    oracle = rows[("oracle", "all")]
    assert oracle["sequences"] == 1 and oracle["lost"] == 0
    assert oracle["rra@15"] == 100 and oracle["rta@15"] == 100 and oracle["maa@30"] == pytest.approx(100)
    assert oracle["rot_med"] < 1e-6
    record = next(r for r in result.records if r["method"] == "oracle")
    assert len(record["rot_errs"]) == 4 * 3 // 2
    colmap = rows[("colmap", "all")]  # random-noise images: COLMAP cannot register them, and that counts
    assert colmap["lost"] == 4 and colmap["rra@15"] == 0 and colmap["maa@30"] == 0
    assert "| oracle | toy | 1 | 0 | 100.0 | 100.0 | 100.0 |" in (tmp_path / "results.md").read_text()


def test_category_rows_average_into_all():
    gt = ring_poses(4, seed=0)
    turned = gt.copy()
    turned[0, :3, :3] = turned[0, :3, :3] @ Rotation.from_euler("z", 20, degrees=True).as_matrix()
    sequences = [("s1", "a", ["a1", "a2", "a3", "a4"], gt), ("s2", "b", ["b1", "b2", "b3", "b4"], gt)]
    estimates = {"a1": turned}

    def method(paths):
        return estimates.get(paths[0], gt)

    def broken(paths):
        raise RuntimeError("singular system")

    with pytest.warns(UserWarning, match="singular system"):
        result = evaluate_sequences("toy", {"m": method, "broken": broken}, sequences, verbose=False)
    rows = {row["group"]: row for row in result.summary if row["method"] == "m"}
    # Category a: camera 0 turned 20 deg, so 3 of its 6 pairs miss RRA@15; category b is perfect.
    assert rows["a"]["rra@15"] == pytest.approx(50) and rows["b"]["rra@15"] == 100
    assert rows["all"]["rra@15"] == pytest.approx(75) and rows["all"]["sequences"] == 2
    lost = next(row for row in result.summary if row["method"] == "broken" and row["group"] == "all")
    assert lost["lost"] == 8 and lost["rra@15"] == 0 and lost["sequences"] == 2
    assert {r["error"] for r in result.records if r["method"] == "broken"} == {"RuntimeError: singular system"}


@pytest.fixture(scope="module")
def re10k_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("re10k")
    poses = ring_poses(6, seed=3)
    lines = ["https://www.youtube.com/watch?v=example"]
    for k, cam2world in enumerate(poses):
        timestamp = str(1000 * (k + 1))
        world2cam = np.linalg.inv(cam2world)[:3].reshape(-1)
        lines.append(" ".join([timestamp, "0.5", "0.9", "0.5", "0.5", "0", "0", *map(repr, world2cam.tolist())]))
        if k != 2:  # frame 3 was not extracted: skipped
            write_image(root / "frames" / "clip0" / f"{timestamp}.png", seed=k)
    (root / "test").mkdir()
    (root / "test" / "clip0.txt").write_text("\n".join(lines) + "\n")
    return root, poses


def test_realestate10k_reader_and_oracle(re10k_root, tmp_path):
    root, poses = re10k_root
    sequences = realestate10k_sequences(root, RealEstate10kEvalConfig(frames=5))
    assert len(sequences) == 1
    name, group, paths, gt = sequences[0]
    assert (name, group) == ("clip0", "realestate10k") and not any("3000" in p for p in paths)
    np.testing.assert_allclose(gt, poses[[0, 1, 3, 4, 5]], atol=1e-9)
    with pytest.raises(ValueError, match="extract the frames"):
        realestate10k_sequences(root, RealEstate10kEvalConfig(frames=6))
    result = run_eval("realestate10k", data=root, methods=["oracle"], frames=5, verbose=False)
    assert result.summary[-1]["maa@30"] == pytest.approx(100)


def test_multiview_benchmarks_need_data():
    with pytest.raises(ValueError, match="--data"):
        run_eval("co3d", methods=["oracle"], verbose=False)


def test_pointmap_poses_a_sequence_through_reconstruct(tiny_model, tmp_path):
    paths = [str(tmp_path / f"{k}.png") for k in range(3)]
    for k in range(3):
        write_image(tmp_path / f"{k}.png", seed=k)
        np.save(true_depth_path(paths[k]), np.full((48, 64), 3.0, dtype=np.float32))
    sequences = [("seq", "toy", paths, ring_poses(3, seed=0))]
    result = evaluate_sequences("toy", {"pointmap": PointmapSequences(tiny_model)}, sequences, verbose=False)
    (record,) = result.records
    assert record["error"] is None and record["lost"] == 0 and len(record["rot_errs"]) == 3
    assert record["depth_absrel"] >= 0 and 0 <= record["depth_d1"] <= 100  # a random network's depths, scored
    assert all(0 <= e <= 180 for e in record["rot_errs"]) and all(0 <= e <= 90 for e in record["trans_errs"])
    row = result.summary[-1]
    assert (row["method"], row["group"], row["sequences"]) == ("pointmap", "all", 1)
    assert 0 <= row["maa@30"] <= 100 and row["seconds"] > 0


def test_pointmap_cli_runs_eval(re10k_root, tmp_path, capsys):
    from pointmap.cli import main as cli_main

    root, _ = re10k_root
    out = tmp_path / "out"
    code = cli_main(["eval", "realestate10k", "--data", str(root), "--methods", "oracle", "--frames", "5",
                     "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| oracle | realestate10k | 1 | 0 | 100.0 | 100.0 | 100.0 |" in printed
    assert (out / "results.json").is_file() and ((out / "rot_med.png").is_file() or not HAS_MATPLOTLIB)
    assert cli_main(["eval", "co3d", "--methods", "oracle", "--quiet"]) == 2
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "categories"), [("synthetic-rooms", ["room"]),
                                                  ("synthetic-objects", ["objects", "objects-plain"])])
def test_synthetic_sequences_oracle_is_perfect(name, categories):
    result = run_eval(name, methods=["oracle"], max_sequences=len(categories), frames=3, resolution=(48, 64),
                      verbose=False)
    for record, category in zip(result.records, categories, strict=True):
        item_category, seed = record["item"].split("_seed")
        assert item_category == category and int(seed) % 2 == 1  # a val-split seed
    row = result.summary[-1]
    assert (row["group"], row["sequences"], row["lost"]) == ("all", len(categories), 0)
    assert row["maa@30"] == pytest.approx(100)
    # The oracle's depths are the true ones at its own half scale: one scale per sequence takes that out.
    assert row["depth_absrel"] == pytest.approx(0, abs=1e-6) and row["depth_d1"] == 100
    assert result.settings["size"] == (48, 64) and result.settings["views"] == 3


def test_depth_errors_take_one_scale_per_sequence(tmp_path):
    """Two images of true depth 2 (one pixel unknown); the estimate is half of it, but a tenth of image 1's
    pixels are 1.5 times too deep: the median scale is 2, and those pixels are 50 % off."""
    paths = [str(tmp_path / f"{k}.png") for k in range(2)]
    truth = np.full((10, 10), 2.0, dtype=np.float32)
    truth[0, 0] = 0  # unknown: left out
    samples = []
    for path in paths:
        np.save(true_depth_path(path), truth)
        rows, columns = np.indices((10, 10))
        samples.append(np.column_stack([columns.ravel(), rows.ravel(), np.ones(100)]))
    samples[1][90:, 2] = 1.5
    samples[1] = np.vstack([samples[1], [[-3.0, 4.0, 9.0]]])  # outside the image: left out
    errors = depth_errors(samples, paths)
    assert errors["depth_absrel"] == pytest.approx(10 * 0.5 / 198)
    assert errors["depth_d1"] == pytest.approx(100 * 188 / 198)
    (tmp_path / "1.depth.npy").unlink()
    assert all(math.isnan(value) for value in depth_errors(samples, paths).values())


def test_synthetic_objects_orbit_sets_how_far_the_cameras_stand(tmp_path):
    config = SyntheticRoomsConfig(scene="objects", rooms=1, views=6, size=(24, 32), object_distance_m=1.0)
    (_, _, _, poses), = held_out_rooms(tmp_path, config, verbose=False)
    centre = np.array(make_scene("objects", scene_seed("val", 0, 0)).layouts[0].target)
    distance = np.linalg.norm(poses[:, :3, 3] - centre, axis=-1)
    assert ((distance > 0.87) & (distance < 1.13)).all()  # 1 m +- 13 %
    with pytest.raises(ValueError, match="orbit_m: an option of the synthetic-objects benchmark"):
        run_eval("synthetic-rooms", methods=["oracle"], orbit_m=1.0, verbose=False)
