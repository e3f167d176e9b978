"""Copy the photos of every `[[build]]` of data/real_scenes.toml out of git repositories and print its SfM command.

REPOS holds one git repository per manifest repository: a bare mirror as the `fetch` tool lays it out
(`REPOS/<owner>+<name>/repo`) or a clone (`REPOS/<owner>+<name>` or `REPOS/<name>`). Photos are read at
the manifest's commit, so a clone may have any branch checked out. Each build's photos go to
PHOTOS/<build>/; a photo the repository lacks (a mirror without that blob) is reported and left out.

    python data/prepare_real.py /work/.mirror /tmp/realphotos            # copy, print the commands
    python data/prepare_real.py /work/.mirror /tmp/realphotos --run      # copy, then run them
"""

from __future__ import annotations

import argparse
import fnmatch
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pointmap.data.real.git_sources import find_repository, list_folder, read_file
from pointmap.io_utils import atomic_write_bytes

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

MANIFEST = Path(__file__).with_name("real_scenes.toml")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
SFM_OPTIONS = ["--sfm-image-format", "jpg", "--jpeg-quality", "90", "--max-image-size", "512"]
"""The options `.carry/real/sfm` was built with (docs/real-data.md)."""


@dataclass(frozen=True)
class Build:
    """One SfM scene made from photos of one manifest scene (a `[[build]]` table)."""

    name: str
    """Folder name of the SfM scene, and of its photo folder."""
    scene: str
    """The `[[scene]]` whose repository, commit and path hold the photos."""
    match: str = "*"
    """Only photos whose file name matches this glob (case-sensitive)."""
    start: int = 0
    """Index of the first photo taken, in the matching photos sorted by name."""
    step: int = 1
    """Take every step-th photo from start."""
    count: int | None = None
    """Take at most this many; None: to the end."""
    spread: int | None = None
    """Instead of start, step and count: this many photos evenly spread from the first to the last."""
    camera_mode: str | None = None
    """`--camera-mode` of build-real; None: the builder's default."""


def load_manifest(manifest: Path = MANIFEST) -> tuple[dict[str, dict], list[Build]]:
    """The manifest's scenes by name and its builds; raises ValueError on a build naming no scene."""
    with open(manifest, "rb") as f:
        tables = tomllib.load(f)
    scenes = {scene["name"]: scene for scene in tables["scene"]}
    builds = [Build(**table) for table in tables.get("build", [])]
    for build in builds:
        if build.scene not in scenes:
            raise ValueError(f"{manifest}: build {build.name} names scene {build.scene!r}, which is not listed")
    return scenes, builds


def select_photos(names: list[str], build: Build) -> list[str]:
    """The photo file names a build takes out of a folder's file names."""
    photos = sorted(n for n in names if n.lower().endswith(PHOTO_SUFFIXES) and fnmatch.fnmatchcase(n, build.match))
    if build.spread is not None:
        if build.spread >= len(photos):
            return photos
        last = len(photos) - 1
        # Index i * last / (spread - 1), rounded half up, in integers.
        return [photos[(2 * i * last + build.spread - 1) // (2 * (build.spread - 1))] for i in range(build.spread)]
    stop = None if build.count is None else build.start + build.count * build.step
    return photos[build.start : stop : build.step]


def copy_build(scene: dict, build: Build, repos: Path, photos_dir: Path) -> tuple[list[str], list[str]]:
    """Copy a build's photos into photos_dir/<build.name>; returns (copied, missing) file names."""
    repo = find_repository(repos, scene["repository"])
    selected = select_photos(list_folder(repo, scene["commit"], scene["path"]), build)
    out_dir = photos_dir / build.name
    out_dir.mkdir(parents=True, exist_ok=True)
    strangers = sorted(p.name for p in out_dir.iterdir() if p.name not in selected)
    if strangers:
        # build-real takes every photo of the folder: others would change the scene.
        raise FileExistsError(f"{out_dir}: holds {strangers[:3]}, not in build {build.name}; empty it first")
    copied, missing = [], []
    for name in selected:
        try:
            data = read_file(repo, scene["commit"], f"{scene['path']}/{name}")
        except FileNotFoundError:
            missing.append(name)
            continue
        atomic_write_bytes(out_dir / name, data)
        copied.append(name)
    return copied, missing


def sfm_command(build: Build, photos_dir: Path, sfm_dir: Path) -> list[str]:
    """The `pointmap data build-real --stage sfm` command line of one build."""
    command = ["pointmap", "data", "build-real", str(photos_dir / build.name), "--stage", "sfm"]
    command += ["--sfm-dir", str(sfm_dir), *SFM_OPTIONS]
    if build.camera_mode is not None:
        command += ["--camera-mode", build.camera_mode]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", type=Path, help="folder of git mirrors or clones")
    parser.add_argument("photos", type=Path, help="folder to copy each build's photos into")
    parser.add_argument("--sfm-dir", type=Path, default=Path(".carry/real/sfm"), help="SfM state to build")
    parser.add_argument("--only", nargs="+", default=None, metavar="BUILD", help="these builds only")
    parser.add_argument("--run", action="store_true", help="run the SfM commands after copying")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)

    scenes, builds = load_manifest(args.manifest)
    if args.only is not None:
        unknown = set(args.only) - {build.name for build in builds}
        if unknown:
            parser.error(f"no build named {sorted(unknown)} in {args.manifest}")
        builds = [build for build in builds if build.name in args.only]
    commands = []
    for build in builds:
        copied, missing = copy_build(scenes[build.scene], build, args.repos, args.photos)
        note = f", missing from the repository: {' '.join(missing)}" if missing else ""
        print(f"{build.name}: {len(copied)} photos{note}", file=sys.stderr)
        commands.append(sfm_command(build, args.photos, args.sfm_dir))
    for command in commands:
        print(shlex.join(command))
        if args.run:
            subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
