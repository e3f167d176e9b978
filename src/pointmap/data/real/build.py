"""`pointmap data build-real`: photo folders and videos -> training scenes with pseudo ground truth.

Per scene, as MegaDepth was built: COLMAP structure from motion (pycolmap), undistortion, dense depth by
plane-sweep stereo kept where multi-view consistent, then the scene in the generic dataset format with
its pair list. Each scene's verdict goes to OUT/.status/<scene>.json, so a second run resumes: accepted
scenes are skipped, rejected and failed ones reported again (rebuilt with --retry-failed).

`--stage sfm` (build_sfm) and `--stage dense` (build_dense) split the work between a machine with
pycolmap and one with a GPU, through a folder per scene (sfm_state); `--stage all` (build_real) does both.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from pointmap.data.formats.generic import write_scene, write_splits
from pointmap.data.real.colmap_pipeline import reconstruct_sparse
from pointmap.data.real.config import BuildConfig, QualityConfig, SfmConfig, StereoConfig
from pointmap.data.real.dense import scene_depths
from pointmap.data.real.ingest import collect_frames, discover_scenes, is_video
from pointmap.data.real.pairs import list_pairs
from pointmap.data.real.quality import SceneQuality, judge, judge_sfm, report_line
from pointmap.data.real.sfm_state import (
    RECORD_FILE,
    SfmRecord,
    SfmScene,
    read_sfm_record,
    read_sfm_state,
    write_sfm_state,
)
from pointmap.data.sample import ViewSample
from pointmap.io_utils import atomic_write_text

STATUS_DIR = ".status"
WORK_DIR = ".work"
SFM_DIR = ".sfm"


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


def sfm_scene(scene: str, source: Path, work: Path, config: BuildConfig) -> tuple[SfmRecord, SfmScene | None]:
    """Frames, COLMAP and undistortion of one scene in the folder `work` (emptied first), then the SfM gates.

    Returns:
        (record, scene): the SfmScene is None when COLMAP built no model ("failed").
    """
    start = time.perf_counter()
    shutil.rmtree(work, ignore_errors=True)
    frames = collect_frames(source, work / "images", config.max_image_size, config.video_every, config.verbose)
    focal_px = {name: frame.focal_px for name, frame in frames.items() if frame.focal_px is not None}
    sfm = reconstruct_sparse(work / "images", work / "colmap", config.sfm, is_video(source), config.verbose, focal_px)
    origins = {name: frame.origin for name, frame in frames.items()}
    seconds = time.perf_counter() - start
    if sfm is None:
        reason = f"COLMAP registered no model from {len(frames)} images"
        return SfmRecord(scene, str(source), "failed", reason, len(frames), 0, math.nan, seconds, origins), None
    reason = judge_sfm(sfm.num_input, sfm.num_registered, sfm.reprojection_px, config.quality)
    status = "done" if reason is None else "rejected"
    record = SfmRecord(
        scene, str(source), status, reason, sfm.num_input, sfm.num_registered, sfm.reprojection_px, seconds, origins
    )
    return record, sfm


def _unfinished(record: SfmRecord) -> SceneResult:
    """The verdict of a scene that stopped at the SfM stage (no model, or an SfM gate)."""
    if record.status == "failed":
        return SceneResult(record.scene, record.source, "failed", record.reason, None)
    quality = SceneQuality(
        scene=record.scene, num_input=record.num_input, num_registered=record.num_registered,
        reprojection_px=record.reprojection_px, dense_share=math.nan, valid_share=math.nan, num_pairs=0,
        mean_overlap=math.nan, seconds=record.seconds, sfm_seconds=record.seconds,
    )
    return SceneResult(record.scene, record.source, "rejected", record.reason, quality)


def dense_scene(record: SfmRecord, sfm: SfmScene, out: Path, config: BuildConfig) -> SceneResult:
    """Stereo, consistency and pairs of an SfM scene; if it passes quality control, write it to out / scene.

    Returns:
        The verdict; the scene folder exists only when it is "accepted".
    """
    stereo_start = time.perf_counter()
    depths = scene_depths(sfm, config.stereo, _default_device(config), config.verbose)
    pairs_start = time.perf_counter()
    pairs = list_pairs(
        depths.depth, sfm.intrinsics, sfm.cam2world, sfm.covisibility, config.quality.min_pair_overlap,
        config.stereo.reprojection_px, config.stereo.depth_tolerance,
    )
    end = time.perf_counter()
    quality = SceneQuality(
        scene=record.scene,
        num_input=sfm.num_input,
        num_registered=sfm.num_registered,
        reprojection_px=sfm.reprojection_px,
        dense_share=sum(float(d.float().mean()) for d in depths.dense) / sfm.num_registered,
        valid_share=sum(float((d > 0).float().mean()) for d in depths.depth) / sfm.num_registered,
        num_pairs=len(pairs),
        mean_overlap=sum(p[2] for p in pairs) / len(pairs) if pairs else math.nan,
        seconds=record.seconds + end - stereo_start,
        sfm_seconds=record.seconds,
        stereo_seconds=pairs_start - stereo_start,
        pairs_seconds=end - pairs_start,
    )
    reason = judge(quality, config.quality)
    if reason is not None:
        return SceneResult(record.scene, record.source, "rejected", reason, quality)
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
                source=record.origins.get(name, name),
            ),
        )
        for frame, name, image, depth, K, pose in zip(
            names, sfm.names, sfm.images, depths.depth, sfm.intrinsics, sfm.cam2world, strict=True
        )
    ]
    write_scene(out, record.scene, views, [(names[i], names[j], o) for i, j, o in pairs], config.image_format)
    return SceneResult(record.scene, record.source, "accepted", None, quality)


def build_scene(scene: str, source: Path, out: Path, config: BuildConfig) -> SceneResult:
    """Both stages of one scene in memory (COLMAP's work folder: out/.work/scene).

    Returns:
        The verdict; the scene folder exists only when it is "accepted".
    """
    record, sfm = sfm_scene(scene, source, out / WORK_DIR / scene, config)
    return _unfinished(record) if sfm is None or record.status != "done" else dense_scene(record, sfm, out, config)


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


def _print_result(result: SceneResult) -> None:
    if result.quality is None:
        print(f"{result.scene}: failed: {result.reason}")
    else:
        print(report_line(result.quality, result.reason))


def _run_scenes(
    out: Path, jobs: dict[str, tuple[str, Callable[[], SceneResult]]], config: BuildConfig
) -> list[SceneResult]:
    """Run each scene's job (scene -> (source, job)) unless an earlier run settled it; store the verdicts.

    Accepted scenes with their folder are skipped; rejected and failed ones too unless config.retry_failed.
    Also writes OUT/splits.json over every accepted scene.
    """
    (out / STATUS_DIR).mkdir(parents=True, exist_ok=True)
    results = []
    for scene, (source, job) in jobs.items():
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
            result = job()
        except (RuntimeError, ValueError, OSError) as err:
            result = SceneResult(scene, source, "failed", f"{type(err).__name__}: {err}", None)
        atomic_write_text(out / STATUS_DIR / f"{scene}.json", json.dumps(result.to_dict(), indent=1))
        if config.verbose:
            _print_result(result)
        results.append(result)
    splits = _write_splits(out, config.val_share)
    if config.verbose:
        accepted = [r for r in results if r.status == "accepted"]
        print(f"{len(accepted)}/{len(results)} scenes accepted, "
              f"{sum(r.quality.num_registered for r in accepted)} images, "
              f"{sum(r.quality.num_pairs for r in accepted)} pairs in {out} "
              f"(splits.json: {len(splits['train'])} train, {len(splits['val'])} val scenes)")
    return results


def build_real(inputs: Sequence[str | Path], out: str | Path, config: BuildConfig | None = None) -> list[SceneResult]:
    """Build training scenes from photo folders and videos, one scene each, resuming an earlier run.

    Both stages run here, scene by scene (`--stage all`); build_sfm and build_dense split them in two.

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

    def job(scene: str, source: Path) -> SceneResult:
        try:
            return build_scene(scene, source, out, config)
        finally:
            if not config.keep_work:
                shutil.rmtree(out / WORK_DIR / scene, ignore_errors=True)

    scenes = discover_scenes([Path(p) for p in inputs])
    return _run_scenes(out, {s: (str(p), functools.partial(job, s, p)) for s, p in scenes.items()}, config)


def build_sfm(inputs: Sequence[str | Path], sfm_dir: str | Path, config: BuildConfig | None = None) -> list[SfmRecord]:
    """The SfM stage (needs pycolmap): frames, COLMAP and undistortion of every scene into sfm_dir / scene.

    A scene the stage finished before (its folder has sfm.json) is skipped; failed and rejected ones are
    redone with config.retry_failed. Undistorted images are stored as config.sfm_image_format.

    Returns:
        One SfmRecord per scene, in input order.
    """
    config = config or BuildConfig()
    sfm_dir = Path(sfm_dir)
    records = []
    for scene, source in discover_scenes([Path(p) for p in inputs]).items():
        previous = read_sfm_record(sfm_dir / scene)
        if previous is not None and (previous.status == "done" or not config.retry_failed):
            records.append(previous)
            if config.verbose:
                print(f"{scene}: SfM {previous.status} by an earlier run ({previous.reason or 'done'}); skipped")
            continue
        work = sfm_dir / WORK_DIR / scene
        try:
            record, sfm = sfm_scene(scene, source, work, config)
        except (RuntimeError, ValueError, OSError) as err:
            record, sfm = SfmRecord(scene, str(source), "failed", f"{type(err).__name__}: {err}", 0, 0, math.nan,
                                    math.nan), None
        finally:
            if not config.keep_work:
                shutil.rmtree(work, ignore_errors=True)
        write_sfm_state(sfm_dir / scene, record, sfm if record.status == "done" else None, config.sfm_image_format,
                        config.jpeg_quality)
        if config.verbose:
            print(sfm_report_line(record))
        records.append(record)
    with contextlib.suppress(OSError):  # the work folders' parent, once empty
        (sfm_dir / WORK_DIR).rmdir()
    return records


def sfm_report_line(record: SfmRecord) -> str:
    """One console line for a scene's SfM stage."""
    verdict = "done" if record.status == "done" else f"{record.status}: {record.reason}"
    return (f"{record.scene}: SfM registered {record.num_registered}/{record.num_input}, "
            f"reprojection {record.reprojection_px:.2f} px, {record.seconds:.0f} s: {verdict}")


def build_dense(
    sfm_dir: str | Path, out: str | Path, config: BuildConfig | None = None, scenes: Sequence[str] | None = None
) -> list[SceneResult]:
    """The dense stage (no pycolmap): stereo, consistency, pairs and quality control of the scenes that
    build_sfm stored in sfm_dir, written to the dataset folder `out` (resuming like build_real).

    Args:
        scenes: names of the scenes to build; None: every scene folder in sfm_dir.
    Returns:
        One SceneResult per scene, in name order (scenes the SfM stage failed or rejected keep that verdict).
    """
    config = config or BuildConfig()
    sfm_dir, out = Path(sfm_dir), Path(out)
    if not sfm_dir.is_dir():
        raise FileNotFoundError(f"{sfm_dir}: no SfM stage folder; run `build-real --stage sfm` first or fix --sfm-dir")
    names = sorted(p.name for p in sfm_dir.iterdir() if (p / RECORD_FILE).is_file()) if scenes is None else scenes
    records = {name: read_sfm_record(sfm_dir / name) for name in names}
    missing = [name for name, record in records.items() if record is None]
    if missing:
        raise FileNotFoundError(f"{sfm_dir}: no finished SfM stage for {', '.join(missing)}; run --stage sfm first")

    def job(scene: str) -> SceneResult:
        if records[scene].status != "done":
            return _unfinished(records[scene])
        return dense_scene(*read_sfm_state(sfm_dir / scene), out, config)

    jobs = {name: (record.source, functools.partial(job, name)) for name, record in records.items()}
    return _run_scenes(out, jobs, config)


@dataclass(frozen=True)
class BuildArgs:
    """A parsed command line: which stage, on what, where to."""

    stage: Literal["all", "sfm", "dense"]
    inputs: list[str]
    """Photo folders and videos (stages all and sfm); scene names to build, none for all (stage dense)."""
    out: str | None
    """The dataset folder (stages all and dense)."""
    sfm_dir: str | None
    """The SfM stage's folder (stages sfm and dense)."""
    config: BuildConfig


def parse_args(argv: Sequence[str] | None = None) -> BuildArgs:
    """The stage, its inputs and folders, and the config from command-line arguments."""
    sfm, stereo, quality, build = SfmConfig(), StereoConfig(), QualityConfig(), BuildConfig()
    parser = argparse.ArgumentParser(
        prog="pointmap data build-real",
        description="Photo folders and videos -> training scenes with COLMAP + multi-view stereo pseudo ground truth. "
        "--stage sfm (needs pycolmap, CPU) then --stage dense (no pycolmap, GPU) split the work between machines.",
    )
    parser.add_argument("inputs", nargs="*",
                        help="photo folders, videos, or folders holding several of them; with --stage dense, "
                        "names of scenes in --sfm-dir (default: all)")
    parser.add_argument("--stage", choices=["all", "sfm", "dense"], default="all",
                        help="all: both stages per scene; sfm: frames, COLMAP, undistortion into --sfm-dir; "
                        "dense: stereo, pairs, quality control from --sfm-dir into --out")
    parser.add_argument("--out", help="dataset folder (generic format); reruns resume")
    parser.add_argument("--sfm-dir", help="the SfM stage's folder, one sub-folder per scene (default: OUT/.sfm)")
    parser.add_argument("--sfm-image-format", choices=["png", "jpg"], default=build.sfm_image_format,
                        help="undistorted images stored by --stage sfm (jpg: smaller, for shipping)")
    parser.add_argument("--jpeg-quality", type=int, default=build.jpeg_quality)
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
    if args.stage != "dense" and not args.inputs:
        parser.error(f"--stage {args.stage}: pass photo folders or videos")
    if args.out is None and not (args.stage == "sfm" and args.sfm_dir):
        parser.error(f"--stage {args.stage}: pass --out" + (" or --sfm-dir" if args.stage == "sfm" else ""))
    sfm_dir = args.sfm_dir or (None if args.stage == "all" else str(Path(args.out) / SFM_DIR))
    try:  # the configs check their own values (an odd --window, ...); their messages name the field
        config = BuildConfig(
            max_image_size=args.max_image_size,
            video_every=args.video_every,
            image_format=args.image_format,
            sfm_image_format=args.sfm_image_format,
            jpeg_quality=args.jpeg_quality,
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
    except ValueError as err:
        parser.error(str(err))
    return BuildArgs(args.stage, args.inputs, args.out, sfm_dir, config)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of `pointmap data build-real`: 0 when a scene is accepted (stage sfm: when one is done)."""
    args = parse_args(argv)
    if args.stage == "sfm":
        records = build_sfm(args.inputs, args.sfm_dir, args.config)
        return 0 if any(r.status == "done" for r in records) else 1
    if args.stage == "dense":
        results = build_dense(args.sfm_dir, args.out, args.config, args.inputs or None)
    else:
        results = build_real(args.inputs, args.out, args.config)
    return 0 if any(r.status == "accepted" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
