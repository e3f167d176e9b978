"""`pointmap data build-real`: photo folders and videos -> training scenes with pseudo ground truth.

Per scene, as MegaDepth was built: COLMAP structure from motion (pycolmap), undistortion, dense depth by
plane-sweep stereo kept where multi-view consistent, then the scene in the generic dataset format with
its pair list. Each scene's verdict goes to OUT/.status/<scene>.json, so a second run resumes: accepted
scenes are skipped, rejected and failed ones reported again (rebuilt with --retry-failed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from pointmap.data.formats.generic import write_scene, write_splits
from pointmap.data.real.colmap_pipeline import reconstruct_sparse
from pointmap.data.real.config import BuildConfig, QualityConfig, SfmConfig, StereoConfig
from pointmap.data.real.dense import scene_depths
from pointmap.data.real.ingest import collect_frames, discover_scenes, is_video
from pointmap.data.real.pairs import list_pairs
from pointmap.data.real.quality import SceneQuality, judge, report_line
from pointmap.data.sample import ViewSample
from pointmap.io_utils import atomic_write_text

STATUS_DIR = ".status"
WORK_DIR = ".work"


@dataclass(frozen=True)
class SceneResult:
    """What happened to one scene: status "accepted", "rejected" or "failed", the reason, the figures."""

    scene: str
    source: str
    status: str
    reason: str | None
    quality: SceneQuality | None

    def to_dict(self) -> dict:
        quality = None if self.quality is None else self.quality.to_dict()
        return {"scene": self.scene, "source": self.source, "status": self.status, "reason": self.reason,
                "quality": quality}

    @staticmethod
    def from_dict(data: dict) -> SceneResult:
        quality = None if data["quality"] is None else SceneQuality(**data["quality"])
        return SceneResult(data["scene"], data["source"], data["status"], data["reason"], quality)


def _default_device(config: BuildConfig) -> torch.device:
    return torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def build_scene(scene: str, source: Path, out: Path, config: BuildConfig) -> SceneResult:
    """Reconstruct one scene and, if it passes quality control, write it to out / scene.

    Returns:
        The verdict; the scene folder exists only when it is "accepted".
    """
    start = time.perf_counter()
    work = out / WORK_DIR / scene
    shutil.rmtree(work, ignore_errors=True)
    frames = collect_frames(source, work / "images", config.max_image_size, config.video_every, config.verbose)
    sfm_start = time.perf_counter()
    focal_px = {name: frame.focal_px for name, frame in frames.items() if frame.focal_px is not None}
    sfm = reconstruct_sparse(work / "images", work / "colmap", config.sfm, is_video(source), config.verbose, focal_px)
    if sfm is None:
        return SceneResult(scene, str(source), "failed", f"COLMAP registered no model from {len(frames)} images", None)
    stereo_start = time.perf_counter()
    device = _default_device(config)
    depths = scene_depths(sfm, config.stereo, device, config.verbose)
    pairs_start = time.perf_counter()
    pairs = list_pairs(
        depths.depth, sfm.intrinsics, sfm.cam2world, sfm.covisibility, config.quality.min_pair_overlap,
        config.stereo.reprojection_px, config.stereo.depth_tolerance,
    )
    end = time.perf_counter()
    quality = SceneQuality(
        scene=scene,
        num_input=sfm.num_input,
        num_registered=sfm.num_registered,
        reprojection_px=sfm.reprojection_px,
        dense_share=sum(float(d.float().mean()) for d in depths.dense) / sfm.num_registered,
        valid_share=sum(float((d > 0).float().mean()) for d in depths.depth) / sfm.num_registered,
        num_pairs=len(pairs),
        mean_overlap=sum(p[2] for p in pairs) / len(pairs) if pairs else math.nan,
        seconds=end - start,
        sfm_seconds=stereo_start - sfm_start,
        stereo_seconds=pairs_start - stereo_start,
        pairs_seconds=end - pairs_start,
    )
    reason = judge(quality, config.quality)
    if reason is not None:
        return SceneResult(scene, str(source), "rejected", reason, quality)
    names = [Path(name).stem for name in sfm.names]
    views = [
        (
            frame,
            ViewSample(
                image=torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 127.5 - 1,
                depth=depth.float().cpu(),
                valid=(depth > 0).cpu(),
                intrinsics=K.float(),
                cam2world=pose.float(),
                source=frames[name].origin,
            ),
        )
        for frame, name, image, depth, K, pose in zip(
            names, sfm.names, sfm.images, depths.depth, sfm.intrinsics, sfm.cam2world, strict=True
        )
    ]
    write_scene(out, scene, views, [(names[i], names[j], overlap) for i, j, overlap in pairs], config.image_format)
    return SceneResult(scene, str(source), "accepted", None, quality)


def _read_status(out: Path, scene: str) -> SceneResult | None:
    path = out / STATUS_DIR / f"{scene}.json"
    return SceneResult.from_dict(json.loads(path.read_text())) if path.is_file() else None


def split_of(scene: str, val_share: float) -> str:
    """ "val" or "train" for a scene, from a hash of its name: stable across runs and machines."""
    digest = int.from_bytes(hashlib.sha256(scene.encode("utf-8")).digest()[:8], "big")
    return "val" if digest / 2**64 < val_share else "train"


def _write_splits(out: Path, val_share: float) -> dict[str, list[str]]:
    """splits.json over every accepted scene in `out` (this run's and earlier runs')."""
    accepted = sorted(
        path.stem
        for path in (out / STATUS_DIR).glob("*.json")
        if json.loads(path.read_text())["status"] == "accepted" and (out / path.stem / "cameras.json").is_file()
    )
    splits = {"train": [s for s in accepted if split_of(s, val_share) == "train"],
              "val": [s for s in accepted if split_of(s, val_share) == "val"]}
    write_splits(out, splits)
    return splits


def build_real(inputs: Sequence[str | Path], out: str | Path, config: BuildConfig | None = None) -> list[SceneResult]:
    """Build training scenes from photo folders and videos, one scene each, resuming an earlier run.

    Args:
        inputs: folders of photos, video files, or folders holding several of them (see discover_scenes).
        out: the dataset folder (generic format); OUT/.status holds each scene's verdict and figures,
            OUT/.work the COLMAP work folders while a scene is built.
        config: builder options.
    Also writes OUT/splits.json: every accepted scene in "train" or "val" (config.val_share, by name).

    Returns:
        One SceneResult per scene, in input order; scenes done by an earlier run come back from their status.
    """
    config = config or BuildConfig()
    out = Path(out)
    (out / STATUS_DIR).mkdir(parents=True, exist_ok=True)
    results = []
    for scene, source in discover_scenes([Path(p) for p in inputs]).items():
        previous = _read_status(out, scene)
        done = previous is not None and previous.status == "accepted" and (out / scene / "cameras.json").is_file()
        if done or (previous is not None and previous.status != "accepted" and not config.retry_failed):
            results.append(previous)
            if config.verbose:
                print(f"{scene}: {previous.status} by an earlier run ({previous.reason or 'done'}); skipped")
            continue
        # A scene folder without an accepted status is a leftover of an interrupted run: never keep it.
        shutil.rmtree(out / scene, ignore_errors=True)
        try:
            result = build_scene(scene, source, out, config)
        except (RuntimeError, ValueError, OSError) as err:
            result = SceneResult(scene, str(source), "failed", f"{type(err).__name__}: {err}", None)
        if not config.keep_work:
            shutil.rmtree(out / WORK_DIR / scene, ignore_errors=True)
        atomic_write_text(out / STATUS_DIR / f"{scene}.json", json.dumps(result.to_dict(), indent=1))
        if config.verbose:
            if result.quality is None:
                print(f"{scene}: failed: {result.reason}")
            else:
                print(report_line(result.quality, result.reason))
        results.append(result)
    splits = _write_splits(out, config.val_share)
    if config.verbose:
        accepted = [r for r in results if r.status == "accepted"]
        print(f"{len(accepted)}/{len(results)} scenes accepted, "
              f"{sum(r.quality.num_registered for r in accepted)} images, "
              f"{sum(r.quality.num_pairs for r in accepted)} pairs in {out} "
              f"(splits.json: {len(splits['train'])} train, {len(splits['val'])} val scenes)")
    return results


def parse_args(argv: Sequence[str] | None = None) -> tuple[list[str], str, BuildConfig]:
    """(inputs, out, config) from command-line arguments."""
    sfm, stereo, quality, build = SfmConfig(), StereoConfig(), QualityConfig(), BuildConfig()
    parser = argparse.ArgumentParser(
        prog="pointmap data build-real",
        description="Photo folders and videos -> training scenes with COLMAP + multi-view stereo pseudo ground truth.",
    )
    parser.add_argument("inputs", nargs="+", help="photo folders, videos, or folders holding several of them")
    parser.add_argument("--out", required=True, help="dataset folder (generic format); reruns resume")
    parser.add_argument("--max-image-size", type=int, default=build.max_image_size, help="longer side in pixels")
    parser.add_argument("--video-every", type=int, default=build.video_every, help="keep every k-th video frame")
    parser.add_argument("--image-format", choices=["jpg", "png"], default=build.image_format)
    parser.add_argument("--val-share", type=float, default=build.val_share,
                        help="share of scenes held out as splits.json's val split (by a hash of the name)")
    parser.add_argument("--camera-model", default=sfm.camera_model, help="COLMAP camera model of the photos")
    parser.add_argument("--camera-mode", choices=["auto", "single", "per_image"], default=sfm.camera_mode)
    parser.add_argument("--matching", choices=["auto", "exhaustive", "sequential"], default=sfm.matching)
    parser.add_argument("--neighbours", type=int, default=stereo.num_neighbours, help="source views per image")
    parser.add_argument("--num-depths", type=int, default=stereo.num_depths, help="planes of the sweep")
    parser.add_argument("--window", type=int, default=stereo.window, help="ZNCC window side (odd)")
    parser.add_argument("--min-zncc", type=float, default=stereo.min_zncc)
    parser.add_argument("--min-consistent", type=int, default=stereo.min_consistent,
                        help="neighbours that must confirm a depth")
    parser.add_argument("--no-sparse-fallback", action="store_true", help="keep dense stereo depths only")
    parser.add_argument("--min-valid-share", type=float, default=quality.min_valid_share)
    parser.add_argument("--max-reprojection-px", type=float, default=quality.max_reprojection_px)
    parser.add_argument("--min-pair-overlap", type=float, default=quality.min_pair_overlap)
    parser.add_argument("--device", default=None, help="stereo device (default: cuda when present)")
    parser.add_argument("--keep-work", action="store_true", help="keep COLMAP databases and models in OUT/.work")
    parser.add_argument("--retry-failed", action="store_true", help="rebuild scenes an earlier run rejected")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or reports")
    args = parser.parse_args(argv)
    if args.window % 2 == 0 or args.window < 3:
        parser.error(f"--window {args.window}: pass an odd size >= 3")
    config = BuildConfig(
        max_image_size=args.max_image_size,
        video_every=args.video_every,
        image_format=args.image_format,
        val_share=args.val_share,
        device=args.device,
        keep_work=args.keep_work,
        retry_failed=args.retry_failed,
        verbose=not args.quiet,
        sfm=replace(sfm, camera_model=args.camera_model, camera_mode=args.camera_mode, matching=args.matching),
        stereo=replace(
            stereo, num_neighbours=args.neighbours, num_depths=args.num_depths, window=args.window,
            min_zncc=args.min_zncc, min_consistent=args.min_consistent, sparse_fallback=not args.no_sparse_fallback,
        ),
        quality=replace(
            quality, min_valid_share=args.min_valid_share, max_reprojection_px=args.max_reprojection_px,
            min_pair_overlap=args.min_pair_overlap,
        ),
    )
    return args.inputs, args.out, config


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of `pointmap data build-real`; 0 when at least one scene is accepted."""
    inputs, out, config = parse_args(argv)
    results = build_real(inputs, out, config)
    return 0 if any(r.status == "accepted" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
