"""Pictures of real reconstructions: reconstruct held-out photo sets, render each to two PNGs, print figures.

The sets (benchmarks/real_pictures.toml: source repository, commit, licence, photos) are real multi-view
photos that no training scene uses. Once, where git mirrors of their repositories are at hand
(`MIRRORS/<owner>+<name>/repo`, as the `fetch` tool lays them out), copy them, downscaled to at most
1024 px, and build COLMAP reference cameras from the photos as published:

    python benchmarks/real_pictures.py --prepare-from /work/.mirror

Then, for any checkpoint (CPU is fine; `--device cuda` on a GPU machine):

    python benchmarks/real_pictures.py --model CKPT --out DIR      # CKPT: a .pth, hub folder or id; none = bundled

runs `pointmap.reconstruct` with its defaults on each set (`--matcher none`: without feature matches, the
network's poses alone), writes DIR/<set>_behind.png (behind and above the
first camera; the first camera's frustum in blue, the others red), DIR/<set>_side.png, the input photos as
DIR/<set>_photos.jpg (none of these for sets marked `pictures = false`), and DIR/summary.json, and prints per
set: seconds, median confidence, share of pixels kept, and against COLMAP, over every pair of images both
registered, the median relative rotation error, the median translation direction error and the share of pairs
within 15 degrees on both; then the same errors of each pair on its own (`pointmap.analyze_pair`'s two-view pose
from the network alone, `matcher=None`), which tells the network's pairwise error apart from the global
alignment's, and the median turn ratio of those pairs that turn at least 15 degrees (estimated over true rotation
angle: under 1 when the network under-rotates, as it does where it cannot match the photos). Last, the dense
depths against COLMAP's points seen in three or more photos (`colmap_tracks.json`, COLMAP run on the stored
photos when the set is prepared): the median relative error with one scale for the whole scene, and the share
within 5 %.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

import pointmap
from pointmap.align.match_depths import inside_image, sample_bilinear
from pointmap.data.real.git_sources import find_repository, read_file
from pointmap.eval.metrics import pairwise_pose_errors, relative_pose_errors, turn_ratios
from pointmap.geometry.turns import photo_roll
from pointmap.images import View
from pointmap.io_utils import atomic_write_bytes, atomic_write_text
from pointmap.render_png import scene_to_pngs
from pointmap.two_view import analyze_pair

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

MANIFEST = Path(__file__).with_name("real_pictures.toml")
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".carry" / "eval_real"
MAX_SIDE = 1024
ORIENTATION_TAG = 274  # EXIF
REFERENCE_FILE = "colmap_reference.json"
TRACKS_FILE = "colmap_tracks.json"


def load_sets(manifest: Path = MANIFEST) -> list[dict]:
    """The photo sets of the manifest, each a dict of its TOML fields."""
    with open(manifest, "rb") as f:
        return tomllib.load(f)["set"]


def _downscaled(data: bytes) -> bytes:
    """The photo's bytes as published, or re-encoded as JPEG (EXIF kept) when its longest side exceeds MAX_SIDE."""
    image = Image.open(io.BytesIO(data))
    exif = image.info.get("exif", b"")
    scale = MAX_SIDE / max(image.size)
    if scale >= 1:
        return data
    size = (round(image.width * scale), round(image.height * scale))
    buffer = io.BytesIO()
    image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def _turned(data: bytes, quarter_turns_clockwise: int) -> bytes:
    """The photo turned that many quarters clockwise, re-encoded as JPEG (quality 95) without EXIF, whose
    orientation tag would no longer hold; the bytes as they are for 0."""
    if quarter_turns_clockwise % 4 == 0:
        return data
    turn = {1: Image.Transpose.ROTATE_270, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_90}
    image = Image.open(io.BytesIO(data)).convert("RGB").transpose(turn[quarter_turns_clockwise % 4])
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _upright(data: bytes) -> bytes:
    """The photo turned as its EXIF orientation tag says, re-encoded as JPEG (quality 95) with its EXIF (the
    focal length) kept and the tag dropped; the bytes as they are when the photo needs no turn. COLMAP reads the
    pixels as stored, so a set whose photos differ in orientation is stored upright for both."""
    image = Image.open(io.BytesIO(data))
    if image.getexif().get(ORIENTATION_TAG, 1) == 1:
        return data
    upright = ImageOps.exif_transpose(image).convert("RGB")
    exif = upright.getexif()
    exif.pop(ORIENTATION_TAG, None)
    buffer = io.BytesIO()
    upright.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def colmap_model(image_dir: Path, camera_mode: str):
    """COLMAP's (pycolmap, SIFT on CPU) largest model of the images of a folder, or None."""
    from pointmap.data.real.colmap_pipeline import run_sfm
    from pointmap.data.real.config import SfmConfig

    config = SfmConfig(camera_mode=camera_mode, matching="exhaustive", init_min_inliers=50)
    with tempfile.TemporaryDirectory() as work:
        return run_sfm(image_dir, Path(work), config, sequential=False)


def colmap_poses(image_dir: Path, camera_mode: str) -> dict[str, list[list[float]]]:
    """COLMAP cam2world (4, 4) poses of the images of a folder, by file name."""
    model = colmap_model(image_dir, camera_mode)
    if model is None:
        return {}
    poses = {}
    for image in model.images.values():
        if image.has_pose:
            world2cam = np.eye(4)
            world2cam[:3] = image.cam_from_world().matrix()
            poses[image.name] = np.linalg.inv(world2cam).tolist()
    return poses


def colmap_track_depths(image_dir: Path, camera_mode: str, min_track: int = 3) -> dict[str, list[list[float]]]:
    """COLMAP's points seen in `min_track` or more of the folder's images, as each image sees them: rows
    [x, y, z] per image name, (x, y) in that image's pixels with centres at integers (COLMAP puts them at
    + 0.5), z the depth in its camera, in COLMAP's scale."""
    model = colmap_model(image_dir, camera_mode)
    if model is None:
        return {}
    tracks = {}
    for image in model.images.values():
        if not image.has_pose:
            continue
        world2cam = image.cam_from_world().matrix()  # (3, 4)
        rows = []
        for observation in image.points2D:
            if observation.has_point3D() and model.points3D[observation.point3D_id].track.length() >= min_track:
                z = float(world2cam[2, :3] @ model.points3D[observation.point3D_id].xyz + world2cam[2, 3])
                rows.append([float(observation.xy[0]) - 0.5, float(observation.xy[1]) - 0.5, z])
        tracks[image.name] = rows
    return tracks


def depth_errors(scene, tracks: dict[str, list[list[float]]]) -> dict[str, float] | None:
    """The scene's dense depths against COLMAP's points (`colmap_track_depths`), with one scale for the whole
    scene (the median ratio): the median relative error and the share within 5 %. Layers, bent surfaces and
    views at different scales all count; None when no point falls inside a processed image."""
    ratios = []
    for view, depth in zip(scene.views, scene.depths, strict=True):
        rows = np.asarray(tracks.get(Path(view.path).name, []), dtype=np.float64).reshape(-1, 3)
        to_processed = np.linalg.inv(view.photo_map())  # COLMAP ran on the photos as stored
        xy = rows[:, :2] @ to_processed[:2, :2].T + to_processed[:2, 2]
        inside = inside_image(xy, *depth.shape)
        if not inside.any():
            continue
        sampled = sample_bilinear(depth.detach().cpu(), xy[inside])
        found = sampled > 0
        ratios.append(rows[inside, 2][found] / sampled[found])
    if not ratios:
        return None
    ratio = np.concatenate(ratios)
    error = np.abs(ratio / np.median(ratio) - 1)
    return {"depth_absrel_median": round(float(np.median(error)), 4),
            "depth_within_5pct": round(float(np.mean(error < 0.05)), 3)}


def prepare_set(entry: dict, mirrors: Path, data_dir: Path) -> None:
    """Copy one set's photos (downscaled) into data_dir/<name>/images and write its COLMAP reference."""
    repo = find_repository(mirrors, entry["repository"])
    image_dir = data_dir / entry["name"] / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as originals:
        turns = entry.get("quarter_turns_clockwise", 0)
        for name in sorted(set(entry["files"]) | set(entry.get("reference_files", []))):
            data = read_file(repo, entry["commit"], f"{entry['path']}/{name}")
            if entry.get("upright_from_exif", False):
                data = _upright(data)
            data = _turned(data, turns.get(name, 0) if isinstance(turns, dict) else turns)
            (Path(originals) / name).write_bytes(data)
            if name in entry["files"]:
                atomic_write_bytes(image_dir / name, _downscaled(data))
        poses = colmap_poses(Path(originals), entry["camera_mode"])
    poses = {name: pose for name, pose in poses.items() if name in entry["files"]}
    reference = {"source": f"{entry['repository']}@{entry['commit']}", "cam2world": poses}
    atomic_write_text(data_dir / entry["name"] / REFERENCE_FILE, json.dumps(reference, indent=1))
    tracks = colmap_track_depths(image_dir, entry["camera_mode"])  # on the stored photos, in their pixels
    atomic_write_text(data_dir / entry["name"] / TRACKS_FILE, json.dumps(tracks))
    print(f"{entry['name']}: {len(entry['files'])} photos, COLMAP registered {len(poses)}")


def photo_sheet(image_paths: list[Path], path: Path, width: int = 800, per_row: int = 6) -> None:
    """The input photos as a grid of thumbnails, `per_row` a row, written as JPEG (what the renders show)."""
    cell = width // per_row
    rows = -(-len(image_paths) // per_row)
    sheet = Image.new("RGB", (width, rows * cell), (255, 255, 255))
    for index, image_path in enumerate(image_paths):
        with Image.open(image_path) as photo:
            thumbnail = ImageOps.exif_transpose(photo).convert("RGB")
            thumbnail.thumbnail((cell - 4, cell - 4), Image.Resampling.LANCZOS)
        left = (index % per_row) * cell + (cell - thumbnail.width) // 2
        top = (index // per_row) * cell + (cell - thumbnail.height) // 2
        sheet.paste(thumbnail, (left, top))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=85)
    atomic_write_bytes(path, buffer.getvalue())


def evaluate_set(entry: dict, model, data_dir: Path, out_dir: Path, device: str, verbose: bool,
                 matcher: str | None = "xfeat") -> dict:
    """Reconstruct one set with pointmap.reconstruct's defaults (`matcher` None: the network's poses alone),
    render it, and measure it."""
    set_dir = data_dir / entry["name"]
    image_dir = set_dir / "images"
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: photos missing; run with --prepare-from MIRRORS first")
    start = time.perf_counter()
    scene = pointmap.reconstruct(image_dir, model=model, device=device, matcher=matcher, verbose=verbose)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    render_start = time.perf_counter()
    pngs = []
    if entry.get("pictures", True):
        pngs = scene_to_pngs(scene, out_dir, entry["name"])
        photo_sheet([Path(view.path) for view in scene.views], out_dir / f"{entry['name']}_photos.jpg")
    render_seconds = time.perf_counter() - render_start
    confidences = torch.cat([conf.detach().cpu().reshape(-1) for conf in scene.confidences])
    kept = torch.cat([mask.detach().cpu().reshape(-1) for mask in scene.masks]).float()
    result = {
        "set": entry["name"],
        "images": len(scene),
        "seconds": round(seconds, 2),
        "render_seconds": round(render_seconds, 2),
        "median_confidence": round(float(confidences.median()), 3),
        "kept_share": round(float(kept.mean()), 3),
        "pngs": [Path(png).name for png in pngs],
    }
    reference_path = set_dir / REFERENCE_FILE
    if reference_path.is_file():
        tracks_path = set_dir / TRACKS_FILE
        if tracks_path.is_file():
            result.update(depth_errors(scene, json.loads(tracks_path.read_text())) or {})
        reference = json.loads(reference_path.read_text())["cam2world"]
        names = [Path(view.path).name for view in scene.views]
        both = [index for index, name in enumerate(names) if name in reference]
        result["colmap_registered"] = len(reference)
        if len(both) >= 2:
            estimated = scene.poses.detach().cpu().double().numpy()[both]
            # COLMAP's cameras of the stored photos, rolled as the photos the reconstruction turned (`quarter_turns`).
            colmap = np.asarray(
                [np.asarray(reference[names[index]]) @ photo_roll(scene.views[index].quarter_turns).T for index in both]
            )
            # Every pair (i, j) of images both registered: errors of cam j -> cam i, free of world frame and scale.
            rotation_errors, translation_errors = pairwise_pose_errors(estimated, colmap)
            result["rre_median_deg"] = round(float(np.median(rotation_errors)), 2)
            result["rte_median_deg"] = round(float(np.median(translation_errors)), 2)
            result["pairs_within_15deg"] = round(
                float(np.mean((rotation_errors < 15) & (translation_errors < 15))), 3
            )
            views = [scene.views[index] for index in both]
            rotation_errors, translation_errors, ratios = two_view_errors(model, views, colmap, device)
            result["two_view_rre_median_deg"] = round(float(np.median(rotation_errors)), 2)
            result["two_view_rte_median_deg"] = round(float(np.median(translation_errors)), 2)
            result["two_view_pairs_within_15deg"] = round(
                float(np.mean((rotation_errors < 15) & (translation_errors < 15))), 3
            )
            ratios = ratios[~np.isnan(ratios)]
            result["two_view_turn_ratio"] = round(float(np.median(ratios)), 3) if len(ratios) else None
    return result


def two_view_errors(model, views: list[View], colmap: np.ndarray,
                    device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative rotation and translation-direction errors (degrees) and turn ratios (estimated over true
    rotation angle, NaN for pairs turning under 15 degrees: `metrics.turn_ratios`) of every pair i < j of `views`
    (the reconstruction's own preprocessed images) against `colmap` (N, 4, 4) cam2world, each pair's pose from
    `analyze_pair` without feature matches (the network's pose)."""
    rotation_errors, translation_errors, ratios = [], [], []
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            pair = analyze_pair(model, views[i], views[j], device=device, matcher=None)
            estimated = pair.cam2_to_cam1.double().cpu().numpy()  # (4, 4) cam j -> cam i
            true = np.linalg.inv(colmap[i]) @ colmap[j]  # as pairwise_pose_errors relates (i, j)
            rotation, translation = relative_pose_errors(estimated, true)
            rotation_errors.append(float(rotation))
            translation_errors.append(float(translation))
            ratios.append(turn_ratios(estimated[:3, :3], true[:3, :3]))
    return np.asarray(rotation_errors), np.asarray(translation_errors), np.asarray(ratios, dtype=np.float64)


def _format(result: dict) -> str:
    line = (
        f"{result['set']:<12} {result['images']:>2} images  {result['seconds']:7.2f} s  "
        f"median conf {result['median_confidence']:6.3f}  kept {100 * result['kept_share']:5.1f} %"
    )
    if "rre_median_deg" in result:
        line += (
            f"  vs COLMAP ({result['colmap_registered']} reg.): median rotation error {result['rre_median_deg']:.1f}"
            f" deg, translation direction {result['rte_median_deg']:.1f} deg,"
            f" {100 * result['pairs_within_15deg']:.0f} % pairs within 15 deg;"
            f" two-view {result['two_view_rre_median_deg']:.1f} / {result['two_view_rte_median_deg']:.1f} deg,"
            f" {100 * result['two_view_pairs_within_15deg']:.0f} %"
        )
        if result.get("two_view_turn_ratio") is not None:
            line += f", turn ratio {result['two_view_turn_ratio']:.2f}"
    if "depth_absrel_median" in result:
        line += (
            f"; depth vs COLMAP points: median error {100 * result['depth_absrel_median']:.1f} %,"
            f" {100 * result['depth_within_5pct']:.0f} % within 5 %"
        )
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (.pth, hub folder or id); default: the bundled model")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNGs and summary.json")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="prepared photo sets")
    parser.add_argument("--sets", default=None, help="comma-separated set names; default: all of the manifest")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prepare-from", type=Path, default=None, help="git mirrors to copy the photos from")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--matcher", choices=["xfeat", "none"], default="xfeat",
                        help="reconstruct's feature matches (default) or none: the network's poses alone")
    args = parser.parse_args(argv)

    entries = load_sets()
    if args.sets:
        wanted = args.sets.split(",")
        unknown = sorted(set(wanted) - {entry["name"] for entry in entries})
        if unknown:
            parser.error(f"unknown sets {unknown}; the manifest has {[entry['name'] for entry in entries]}")
        entries = [entry for entry in entries if entry["name"] in wanted]
    if args.prepare_from is not None:
        for entry in entries:
            prepare_set(entry, args.prepare_from, args.data)
    if args.out is None:
        if args.prepare_from is None:
            parser.error("pass --out DIR (and --model CKPT, or the bundled model is used)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    model = pointmap.load_model(args.model, device=args.device)
    print(f"model {args.model or 'bundled default'}, device {args.device}, torch {torch.__version__}")
    results = []
    matcher = None if args.matcher == "none" else args.matcher
    for entry in entries:
        result = evaluate_set(entry, model, args.data, args.out, args.device, verbose=not args.quiet, matcher=matcher)
        results.append(result)
        print(_format(result), flush=True)
    summary = {"model": args.model or "bundled", "device": args.device, "sets": results}
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
