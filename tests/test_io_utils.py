import os

import pytest

from pointmap.io_utils import atomic_dir, atomic_path, atomic_write_bytes, atomic_write_text, prepare_output_dir


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new bytes")
    assert target.read_bytes() == b"new bytes"
    atomic_write_text(tmp_path / "b.txt", "héllo")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.txt"]


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "points.ply"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".ply"
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["points.ply"]


def test_atomic_path_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"), atomic_path(tmp_path / "no" / "x.txt"):
        pass


def test_prepare_output_dir(tmp_path):
    out = prepare_output_dir(tmp_path / "new" / "deep")
    assert out.is_dir()
    (out / "f").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare_output_dir(out)
    assert prepare_output_dir(out, overwrite=True) == out
    assert (out / "f").read_text() == "x"
    with pytest.raises(FileExistsError, match="not a folder"):
        prepare_output_dir(out / "f", overwrite=True)


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "sparse"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"old")
    with atomic_dir(target) as tmp:
        (tmp / "cameras.bin").write_bytes(b"new")
    assert os.listdir(target) == ["cameras.bin"]
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("writer failed")
    assert os.listdir(target) == ["cameras.bin"]
    assert os.listdir(tmp_path) == ["sparse"]
