"""Build a photo-texture bank folder from Debian packages of freely licensed game textures.

    python training/build_photo_bank.py OUT [--packages torcs-data ufoai-textures] [--size 256] [--max-per-package N]

Each package is downloaded with `apt-get download` into a temporary folder, unpacked with `dpkg-deb -x`
(plus the zip/pk3 archives named in PACKAGES), filtered and deduplicated by
`pointmap.data.synthetic.photo_bank`, and written as `OUT/<package>/*.jpg` with the package's Debian
copyright file as `OUT/<package>/COPYRIGHT`; `OUT/SOURCES.md` lists package, version, licences and count.
The recipe and the licences are in docs/photo-bank-survey.md. Keep OUT outside the repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from PIL import Image
from tqdm import tqdm

from pointmap.data.synthetic.photo_bank import (
    PhotoBankConfig,
    bank_name,
    deduplicate,
    dhash,
    is_photo_like,
    licence_summary,
    texture_candidates,
    write_bank,
)


@dataclass(frozen=True)
class PackageSpec:
    """Where a package keeps its textures."""

    texture_root: str
    """Folder searched for textures, relative to the unpacked package (archives are unpacked into it)."""
    archives: tuple[tuple[str, str], ...] = ()
    """(zip or pk3 path inside the unpacked package, member-name prefix to extract; "" for all)."""
    blacklist: tuple[str, ...] = field(default=())
    """Directory names holding painted art rather than photos (car liveries, UI), skipped at any depth."""


PACKAGES = {
    "0ad-data": PackageSpec(
        texture_root="bank_src",
        archives=(("usr/share/games/0ad/mods/public/public.zip", "art/textures/terrain/types/"),),
    ),
    "ufoai-textures": PackageSpec(
        texture_root="bank_src",
        archives=(("usr/share/games/ufoai/base/0textures.pk3", ""),),
        blacklist=("tex_pics",),
    ),
    "torcs-data": PackageSpec(texture_root="usr/share/games/torcs", blacklist=("cars",)),
    "supertuxkart-data": PackageSpec(
        texture_root="usr/share/games/supertuxkart/data", blacklist=("karts", "gui", "editor")
    ),
}
"""The survey's tier-1 packages."""


@dataclass(frozen=True)
class PackageResult:
    """What one package contributed to the bank."""

    package: str
    version: str
    licences: str
    candidates: int
    photo_like: int
    kept: int


def require_apt() -> None:
    """Stop with a clear message when the Debian tools are missing."""
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: this command needs a Debian or Ubuntu system with apt and dpkg")


def require_known(package: str) -> None:
    """Stop before any download when apt does not know a package or it has no recipe here."""
    if package not in PACKAGES:
        raise SystemExit(f"{package}: no texture recipe; choose from {', '.join(PACKAGES)}")
    query = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True)
    if query.returncode != 0:
        raise SystemExit(f"{package}: apt does not know this package ({query.stderr.strip()}); run apt-get update")


def download(package: str, folder: Path) -> Path:
    """`apt-get download` the package into folder; returns the .deb path."""
    fetched = subprocess.run(["apt-get", "download", package], cwd=folder, capture_output=True, text=True)
    if fetched.returncode != 0:
        raise SystemExit(f"{package}: apt-get download failed: {fetched.stderr.strip()}")
    return next(folder.glob(f"{package}_*.deb"))


def deb_version(deb_path: Path) -> str:
    """Version from an apt file name `name_version_arch.deb` (epoch colon is stored as %3a)."""
    return unquote(deb_path.name.split("_")[1])


def unpack(deb_path: Path, spec: PackageSpec, folder: Path) -> None:
    """Unpack the .deb into folder, then the archives of `spec` into its texture root."""
    subprocess.run(["dpkg-deb", "-x", str(deb_path), str(folder)], check=True)
    deb_path.unlink()
    texture_root = folder / spec.texture_root
    for archive_path, member_prefix in spec.archives:
        with zipfile.ZipFile(folder / archive_path) as archive:
            members = [name for name in archive.namelist() if name.startswith(member_prefix)]
            archive.extractall(texture_root, members)  # zipfile strips absolute paths and ".." parts
        (folder / archive_path).unlink()


def photo_like_hashes(paths: list[Path], config: PhotoBankConfig, package: str) -> dict[Path, int]:
    """Difference hash of every photo-like image among paths; unreadable files are skipped."""
    hashes = {}
    for path in tqdm(paths, desc=f"{package}: filter", unit="img"):
        try:
            with Image.open(path) as image:
                if is_photo_like(image, config):
                    hashes[path] = dhash(image)
        except (OSError, ValueError, SyntaxError):  # truncated files, unsupported DDS/TGA variants
            continue
    return hashes


def open_kept(paths: list[Path], texture_root: Path, package: str) -> Iterator[tuple[str, Image.Image]]:
    """(bank name, image) of each kept path, opened one at a time."""
    for path in tqdm(paths, desc=f"{package}: write", unit="img"):
        with Image.open(path) as image:
            yield bank_name(path.relative_to(texture_root)), image


def build_package(package: str, out: Path, config: PhotoBankConfig, max_kept: int | None) -> PackageResult:
    """Download, unpack, filter, deduplicate and write one package into `out/<package>`."""
    spec = PACKAGES[package]
    package_out = out / package
    if package_out.exists() and any(package_out.iterdir()):
        raise SystemExit(f"{package_out} is not empty; delete it or choose another OUT")
    with tempfile.TemporaryDirectory(prefix=f"photobank-{package}-") as temp:
        temp_dir = Path(temp)
        deb_path = download(package, temp_dir)
        version = deb_version(deb_path)
        unpack(deb_path, spec, temp_dir / "root")
        texture_root = temp_dir / "root" / spec.texture_root
        candidates = texture_candidates(texture_root, spec.blacklist)
        hashes = photo_like_hashes(candidates, config, package)
        photo_paths = list(hashes)
        kept = [photo_paths[i] for i in deduplicate(list(hashes.values()), config.max_distance)][:max_kept]
        written = write_bank(open_kept(kept, texture_root, package), package_out, config)
        copyright_text = (temp_dir / "root" / "usr/share/doc" / package / "copyright").read_text(errors="replace")
    (package_out / "COPYRIGHT").write_text(copyright_text)
    return PackageResult(package, version, licence_summary(copyright_text), len(candidates), len(hashes), len(written))


def sources_markdown(results: list[PackageResult]) -> str:
    """The SOURCES.md table of a bank."""
    lines = [
        "# Sources of this texture bank",
        "",
        "Built by training/build_photo_bank.py. Each folder's COPYRIGHT is the package's full Debian copyright file;",
        "per-file licences and credits are there.",
        "",
        "| package | version | licences (Files stanzas) | textures |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.package} | {r.version} | {r.licences} | {r.kept} |" for r in results]
    return "\n".join(lines) + "\n"


def write_sources(results: list[PackageResult], sources_path: Path) -> None:
    """Write SOURCES.md through a temporary file."""
    partial = sources_path.with_suffix(".partial")
    partial.write_text(sources_markdown(results))
    partial.replace(sources_path)


def parse_args() -> argparse.Namespace:
    """Command-line flags."""
    defaults = PhotoBankConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="bank folder to create (outside the repository)")
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES), help="Debian packages to use")
    parser.add_argument("--size", type=int, default=defaults.size, help="side of the written textures, pixels")
    parser.add_argument("--max-per-package", type=int, default=None, help="keep at most this many per package")
    return parser.parse_args()


def main() -> None:
    """Build the bank and print what each package gave."""
    args = parse_args()
    require_apt()
    for package in args.packages:
        require_known(package)
    config = PhotoBankConfig(size=args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for package in args.packages:
        results.append(build_package(package, args.out, config, args.max_per_package))
        write_sources(results, args.out / "SOURCES.md")  # after each package, so a later failure keeps the record
    for r in results:
        print(f"{r.package} {r.version}: {r.candidates} candidates, {r.photo_like} photo-like, {r.kept} kept")


if __name__ == "__main__":
    main()
