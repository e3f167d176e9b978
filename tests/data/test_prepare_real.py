"""Tests of data/prepare_real.py: photo selection rules, copying out of a git repository, the manifest's builds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pointmap.data.real.git_sources import find_repository

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("prepare_real", REPO / "data" / "prepare_real.py")
prepare_real = importlib.util.module_from_spec(_spec)
sys.modules["prepare_real"] = prepare_real  # dataclasses look their module up there
_spec.loader.exec_module(prepare_real)
Build = prepare_real.Build


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    return subprocess.run(["git", "-C", str(repo), *identity, *args], capture_output=True, check=True, text=True).stdout


@pytest.fixture
def fake_mirror(tmp_path) -> tuple[Path, dict]:
    """A bare mirror laid out as the fetch tool does, holding 3 small photos and a text file at one commit."""
    work = tmp_path / "work"
    (work / "shots").mkdir(parents=True)
    for i, name in enumerate(["a.jpg", "b.JPG", "c.png"]):
        Image.new("RGB", (8, 6), (40 * i, 0, 0)).save(work / "shots" / name)
    (work / "shots" / "LINK.txt").write_text("not a photo")
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "photos")
    commit = _git(work, "rev-parse", "HEAD").strip()
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "someone+shots" / "repo")], check=True)
    scene = {"name": "shots", "repository": "someone/shots", "commit": commit, "path": "shots"}
    return mirrors, scene


def test_selection_rules_expand_to_the_recorded_photos():
    names = [f"{i:02d}.jpg" for i in range(28)] + ["notes.txt", "x_RGB.JPG"]
    photos = sorted(n for n in names if n != "notes.txt")
    assert prepare_real.select_photos(names, Build("b", "s")) == photos
    assert prepare_real.select_photos(names, Build("b", "s", count=3)) == ["00.jpg", "01.jpg", "02.jpg"]
    assert prepare_real.select_photos(names, Build("b", "s", start=25)) == ["25.jpg", "26.jpg", "27.jpg", "x_RGB.JPG"]
    assert prepare_real.select_photos(names, Build("b", "s", step=10, count=2)) == ["00.jpg", "10.jpg"]
    assert prepare_real.select_photos(names, Build("b", "s", match="*_RGB.JPG")) == ["x_RGB.JPG"]
    # 24 of 28 evenly spread leaves out indices 3, 10, 17 and 24 (i * 27 / 23 rounded), as nineveh was built.
    spread = prepare_real.select_photos(names[:28], Build("b", "s", spread=24))
    assert sorted(set(names[:28]) - set(spread)) == ["03.jpg", "10.jpg", "17.jpg", "24.jpg"]
    assert prepare_real.select_photos(names[:3], Build("b", "s", spread=24)) == names[:3]


def test_copy_build_copies_the_selected_photos_from_a_mirror(fake_mirror, tmp_path):
    mirrors, scene = fake_mirror
    photos_dir = tmp_path / "photos"
    copied, missing = prepare_real.copy_build(scene, Build("two", "shots", start=1), mirrors, photos_dir)
    assert (copied, missing) == (["b.JPG", "c.png"], [])
    assert sorted(p.name for p in (photos_dir / "two").iterdir()) == ["b.JPG", "c.png"]
    assert Image.open(photos_dir / "two" / "c.png").getpixel((0, 0)) == (80, 0, 0)
    # Again into the same folder: the same photos, nothing else.
    assert prepare_real.copy_build(scene, Build("two", "shots", start=1), mirrors, photos_dir)[0] == copied
    with pytest.raises(FileExistsError, match="a.jpg"):
        (photos_dir / "two" / "a.jpg").write_bytes(b"")
        prepare_real.copy_build(scene, Build("two", "shots", start=1), mirrors, photos_dir)


def test_a_clone_named_after_the_repository_serves_too(fake_mirror, tmp_path):
    mirrors, scene = fake_mirror
    clones = tmp_path / "clones"
    subprocess.run(["git", "clone", "-q", str(mirrors / "someone+shots" / "repo"), str(clones / "shots")], check=True)
    assert find_repository(clones, "someone/shots") == clones / "shots"
    copied, _ = prepare_real.copy_build(scene, Build("first", "shots", count=1), clones, tmp_path / "photos")
    assert copied == ["a.jpg"]
    with pytest.raises(FileNotFoundError, match="someone/other"):
        find_repository(clones, "someone/other")


def test_a_photo_missing_from_the_mirror_is_reported(fake_mirror, tmp_path):
    mirrors, scene = fake_mirror
    git_dir = mirrors / "someone+shots" / "repo"
    blob = _git(git_dir, "rev-parse", f"{scene['commit']}:shots/a.jpg").strip()
    # The clone is packed: take the pack out, unpack it into loose objects (objects/<2 hex>/<rest>), drop one.
    for pack in (git_dir / "objects" / "pack").glob("*.pack"):
        data = pack.read_bytes()
        pack.unlink()
        pack.with_suffix(".idx").unlink()
        subprocess.run(["git", "-C", str(git_dir), "unpack-objects", "-q"], input=data, check=True)
    (git_dir / "objects" / blob[:2] / blob[2:]).unlink()
    copied, missing = prepare_real.copy_build(scene, Build("all", "shots"), mirrors, tmp_path / "photos")
    assert (copied, missing) == (["b.JPG", "c.png"], ["a.jpg"])


def test_manifest_builds_name_listed_scenes_and_print_their_command():
    scenes, builds = prepare_real.load_manifest()
    assert len(builds) >= 10 and len({b.name for b in builds}) == len(builds)
    assert all(b.scene in scenes and b.camera_mode in (None, "auto", "single", "per_image") for b in builds)
    axe = next(b for b in builds if b.name == "socketed-axe")
    command = prepare_real.sfm_command(axe, Path("photos"), Path("state"))
    assert command[:6] == ["pointmap", "data", "build-real", str(Path("photos") / "socketed-axe"), "--stage", "sfm"]
    assert command[-2:] == ["--camera-mode", "single"] and "--max-image-size" in command
