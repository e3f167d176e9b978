import json
import sys

import numpy as np
import pytest
from PIL import Image

from pointmap.cli import build_parser, main, read_matrices
from test_pipeline import tiny_model, write_photos


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from pointmap.model.weights import save_model

    folder = tmp_path_factory.mktemp("model")
    save_model(tiny_model(), folder)
    return folder


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("pointmap: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("reconstruct", "pair", "depth", "view", "demo"):
        assert command in text
    options = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["reconstruct"]._actions}
    expected = {"model", "size", "graph", "iterations", "min_conf", "device", "batch_size", "focal", "intrinsics"}
    assert expected | {"poses", "every", "overwrite", "quiet", "out", "inputs"} <= options


def test_empty_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    assert main(["reconstruct", str(tmp_path / "photos"), "-o", str(tmp_path / "out")]) == 2
    assert "folder holds no images" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_missing_model_is_one_line_and_exit_2(tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", count=2)
    code = main(["reconstruct", str(photos), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "nope.pth")])
    assert code == 2
    assert "nope.pth" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(tmp_path, capsys, model_dir):
    photos = write_photos(tmp_path / "photos", count=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["reconstruct", str(photos), "-o", str(out), "--model", str(model_dir)]) == 2
    assert "--overwrite" in _error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_output_inside_a_file_is_refused(tmp_path, capsys, model_dir):
    photos = write_photos(tmp_path / "photos", count=2)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out"
    assert main(["depth", str(photos / "img_0.png"), "-o", str(out), "--model", str(model_dir)]) == 2
    _error_line(capsys)


def test_bad_intrinsics_file(tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", count=2)
    bad = tmp_path / "K.txt"
    bad.write_text("1 2 3\n4 5 6\n")
    assert main(["reconstruct", str(photos), "-o", str(tmp_path / "out"), "--intrinsics", str(bad)]) == 2
    assert "K.txt: cannot read 3x3 matrices" in _error_line(capsys)


def test_read_matrices_formats(tmp_path):
    K = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])
    poses = np.stack([np.eye(4), np.diag([1.0, -1, -1, 1])])
    np.save(tmp_path / "poses.npy", poses)
    np.savetxt(tmp_path / "K.txt", K)
    document = {"images": [{"cam2world": p.tolist(), "original": {"K": K.tolist()}} for p in poses]}
    (tmp_path / "cameras.json").write_text(json.dumps(document))
    (tmp_path / "K.json").write_text(json.dumps({"K": K.tolist()}))
    np.testing.assert_array_equal(read_matrices(str(tmp_path / "poses.npy"), 4), poses)
    np.testing.assert_array_equal(read_matrices(str(tmp_path / "K.txt"), 3), K)
    np.testing.assert_array_equal(read_matrices(str(tmp_path / "K.json"), 3), K)
    np.testing.assert_array_equal(read_matrices(str(tmp_path / "cameras.json"), 4), poses)
    np.testing.assert_array_equal(read_matrices(str(tmp_path / "cameras.json"), 3), np.stack([K, K]))


def test_reconstruct_end_to_end(tmp_path, capsys, model_dir):
    import pycolmap

    photos = write_photos(tmp_path / "photos")
    out = tmp_path / "out"
    args = ["reconstruct", str(photos), "-o", str(out), "--model", str(model_dir), "--iterations", "20"]
    assert main([*args, "--min-conf", "1", "--preview"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("3 images, ") and summary.endswith(str(out))
    for name in ("points.ply", "scene.glb", "transforms.json", "cameras.json", "depth/img_0.png"):
        assert (out / name).is_file()
    for name in ("preview_behind.png", "preview_side.png"):
        assert Image.open(out / name).size == (800, 600)
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model.num_images() == 3
    assert {(c.width, c.height) for c in model.cameras.values()} == {(96, 72)}


def test_depth_end_to_end(tmp_path, capsys, model_dir):
    photo = write_photos(tmp_path / "photos", count=1) / "img_0.png"
    out = tmp_path / "out"
    assert main(["depth", str(photo), "-o", str(out), "--model", str(model_dir), "--quiet"]) == 0
    camera = json.loads((out / "camera.json").read_text())
    depth = np.load(out / "depth.npy")
    assert depth.shape == tuple(np.load(out / "confidence.npy").shape)
    assert camera["focal_original"] == pytest.approx(camera["focal"] * camera["K_original"][0][0] / camera["K"][0][0])


def test_view_without_viser_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "viser", None)  # makes `import viser` fail
    assert main(["view", str(tmp_path)]) == 2
    assert "pip install pointmap[viewer]" in _error_line(capsys)


def test_view_of_a_folder_without_results(tmp_path, capsys):
    pytest.importorskip("viser")
    assert main(["view", str(tmp_path)]) == 2
    assert "folder written by `pointmap reconstruct`" in _error_line(capsys)


def test_pair_end_to_end(tmp_path, model_dir):
    pytest.importorskip("pointmap.two_view")
    photos = write_photos(tmp_path / "photos", count=2)
    out = tmp_path / "out"
    args = ["pair", str(photos / "img_0.png"), str(photos / "img_1.png"), "-o", str(out), "--model", str(model_dir)]
    assert main([*args, "--quiet"]) == 0
    summary = json.loads((out / "pair.json").read_text())
    pose = np.array(summary["cam2_to_cam1"])
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-4)  # a rotation
    assert np.load(out / "depth1.npy").shape == np.load(out / "depth2.npy").shape
    import cv2

    matches = cv2.imread(str(out / "matches.png"))
    assert matches.shape[1] == 2 * np.load(out / "depth1.npy").shape[1]


def test_train_with_a_missing_config_is_one_line_error(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pointmap: error:") and "nope.toml" in err and "\n" not in err


def test_data_build_real_reaches_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "build-real", "--help"])
    assert exit_info.value.code == 0
    assert "pointmap data build-real" in capsys.readouterr().out
