"""`pointmap eval BENCHMARK`: pick the benchmark and methods, run, print and save the table."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from pointmap.data.synthetic.palette import PHOTO_SHARE
from pointmap.eval.options import BENCHMARK_METHODS, DEFAULT_METHODS, DEPTH_BENCHMARKS, EPILOG, add_arguments
from pointmap.eval.report import EvalResult, save_result, to_markdown


def parse_resolution(text: str | None, size: int) -> tuple[int, int]:
    """(H, W) from "HxW", or the default of the network size (224 -> 224x224, 512 -> 384x512)."""
    if text is None:
        return (224, 224) if size == 224 else (384, 512)
    try:
        height, width = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--resolution {text!r}: pass HxW, e.g. 224x224 or 384x512") from None
    return height, width


def parse_hfov(text: str | None) -> tuple[float, float] | None:
    """(low, high) degrees from "LOW,HIGH", or None (the training data's range) for None."""
    if text is None:
        return None
    try:
        low, high = (float(side) for side in text.split(","))
    except ValueError:
        raise ValueError(f"--hfov {text!r}: pass LOW,HIGH in degrees, e.g. 15,45") from None
    return low, high


def run_eval(
    benchmark: str,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    model: nn.Module | str | os.PathLike | None = None,
    methods: Sequence[str] | None = None,
    size: int | None = None,
    device: str | torch.device = "cpu",
    pairs: int | None = None,
    resolution: tuple[int, int] | None = None,
    seed: int = 0,
    frames: int = 10,
    max_sequences: int | None = None,
    categories: Sequence[str] | None = None,
    min_frames: int = 50,
    max_images: int | None = None,
    photo_folder: str | os.PathLike | None = None,
    photo_share: float = PHOTO_SHARE,
    roll_deg: float | None = None,
    hfov_deg: tuple[float, float] | None = None,
    kinds: Sequence[str] | None = None,
    orbit_m: float | None = None,
    quarter_turns: int | None = None,
    flash_share: float | None = None,
    verbose: bool = True,
) -> EvalResult:
    """Run a benchmark, save results.json / results.md / plots into `out` (when given) and return the result.

    Args:
        benchmark: a key of BENCHMARK_METHODS.
        data: the dataset folder (None for the synthetic benchmarks).
        out: output folder, or None to write nothing.
        model: a loaded network, a checkpoint path or hub id, or None for the bundled model; loaded only
            when a "pointmap" method is among them.
        methods: names from BENCHMARK_METHODS[benchmark]; default DEFAULT_METHODS[benchmark].
        size: network image size (224 or 512); default the model's. Synthetic renders are made at that size
            and go in as they are, or, with `resolution` given too, are resized and cropped by its rule.
        device: where the network runs, and where the synthetic benchmarks ray-cast their scenes.
        pairs: number of pairs (synthetic: default 64; scannet1500: the first N of test.npz, default all).
        resolution: the synthetic render size (see SyntheticEvalConfig).
        seed: the synthetic split's base seed, or the frame sampling's seed.
        frames, max_sequences, categories, min_frames: the multi-view sets (see Co3dEvalConfig,
            RealEstate10kEvalConfig).
        max_images: the depth benchmarks' image cap (see `runners.depth_datasets.depth_items`).
        photo_folder, photo_share: synthetic only: photos on some surfaces of the held-out scenes, and the
            share of those surfaces; see SyntheticEvalConfig.
        roll_deg, kinds: synthetic only: the held-out cameras' roll (standard deviation, degrees) and the
            held-out scene kinds; None: the training data's (see SyntheticEvalConfig).
        hfov_deg: synthetic only: (low, high) range of the held-out cameras' horizontal field of view, degrees;
            None: the training data's (see SyntheticEvalConfig).
        orbit_m: synthetic-objects only: the cameras' distance from the objects, metres; None: 2.3.
        quarter_turns: synthetic only: quarter turns counter-clockwise of every held-out pair (0-3); None: 0.
        flash_share: synthetic only: share of the held-out pairs lit by a flash at each camera; None: 0.
        verbose: progress bars.
    """
    if benchmark not in BENCHMARK_METHODS:
        raise ValueError(f"benchmark {benchmark!r} unknown; pick one of {', '.join(BENCHMARK_METHODS)}")
    names = tuple(methods or DEFAULT_METHODS[benchmark])
    unknown = [name for name in names if name not in BENCHMARK_METHODS[benchmark]]
    if unknown:
        raise ValueError(
            f"methods {unknown} unknown for {benchmark}; pick from {', '.join(BENCHMARK_METHODS[benchmark])}"
        )
    synthetic_only = (("photo_folder", photo_folder), ("roll_deg", roll_deg), ("hfov_deg", hfov_deg),
                      ("kinds", kinds), ("quarter_turns", quarter_turns), ("flash_share", flash_share))
    given = [name for name, value in synthetic_only if value is not None]
    if benchmark != "synthetic" and given:
        raise ValueError(f"{', '.join(given)}: options of the synthetic benchmark, not of {benchmark}")
    if orbit_m is not None and benchmark != "synthetic-objects":
        raise ValueError(f"orbit_m: an option of the synthetic-objects benchmark, not of {benchmark}")
    if orbit_m is not None and orbit_m <= 0:
        raise ValueError(f"orbit_m={orbit_m}: pass a distance in metres above 0")
    if not benchmark.startswith("synthetic") and data is None:
        raise ValueError(f"{benchmark} needs the dataset: pass --data PATH (see `pointmap eval --help`)")
    network = None
    if any(name.startswith("pointmap") for name in names):
        from pointmap.pipeline import resolve_model

        network = resolve_model(model, device)
    if benchmark in ("synthetic", "scannet1500"):
        result = _run_pairs(benchmark, data, names, network, size, device, pairs, resolution, seed, photo_folder,
                            photo_share, roll_deg, hfov_deg, kinds, quarter_turns, flash_share, verbose)
    elif benchmark in DEPTH_BENCHMARKS:
        result = _run_depth(benchmark, data, names, network, size, device, max_images, verbose)
    elif benchmark in ("dtu", "eth3d"):
        result = _run_points(benchmark, data, names, network, size, device, frames, verbose)
    else:
        result = _run_sequences(benchmark, data, names, network, size, device, seed, frames, max_sequences,
                                categories, min_frames, resolution, orbit_m, verbose)
    result.settings.update(
        benchmark=benchmark, data=None if data is None else str(data), image_size=size, device=str(device),
        model=None if model is None or isinstance(model, nn.Module) else str(model),
    )
    if out is not None:
        save_result(result, out)
    return result


def _run_pairs(benchmark, data, names, network, size, device, pairs, resolution, seed, photo_folder, photo_share,
               roll_deg, hfov_deg, kinds, quarter_turns, flash_share, verbose) -> EvalResult:
    from pointmap.eval.baselines import ColmapPairs, SiftPairs
    from pointmap.eval.methods import PointmapPairs, oracle_pairs
    from pointmap.eval.pairs import evaluate_pairs
    from pointmap.eval.runners.scannet1500 import scannet1500_pairs
    from pointmap.eval.synthetic import SyntheticEvalConfig, evaluate_synthetic

    image_size = size or (network.image_size if network is not None else 224)
    # Photos go through the official resize and crop of the network's size. Synthetic renders are network-sized
    # already and go in as they are, unless both a size and a render resolution are given: then they are resized
    # and cropped like photos (a 224 model on the 384 x 512 renders of the 512 benchmark, say).
    network_size = None if benchmark == "synthetic" and (size is None or resolution is None) else image_size
    builders = {
        "pointmap": lambda: PointmapPairs(network, size=network_size, device=device),
        "pointmap-matched": lambda: PointmapPairs(network, size=network_size, device=device, matcher="xfeat"),
        "sift": SiftPairs,
        "colmap": lambda: ColmapPairs(seed=seed),
        "oracle": lambda: oracle_pairs,
    }
    methods = {name: builders[name]() for name in names}
    if benchmark == "synthetic":
        config = SyntheticEvalConfig(pairs=pairs or 64, size=resolution or parse_resolution(None, image_size),
                                     seed=seed, device=str(device), photo_share=photo_share,
                                     photo_folder=None if photo_folder is None else str(photo_folder),
                                     roll_deg=SyntheticEvalConfig.roll_deg if roll_deg is None else roll_deg,
                                     hfov_deg=SyntheticEvalConfig.hfov_deg if hfov_deg is None else tuple(hfov_deg),
                                     kinds=SyntheticEvalConfig.kinds if kinds is None else tuple(kinds),
                                     quarter_turns=quarter_turns or 0, flash_share=flash_share or 0.0)
        return evaluate_synthetic(methods, config, verbose=verbose)
    items = tqdm(scannet1500_pairs(data, pairs), desc=benchmark, unit="pair", disable=not verbose)
    return evaluate_pairs(benchmark, methods, items)


def _run_depth(benchmark, data, names, network, size, device, max_images, verbose) -> EvalResult:
    from pointmap.eval.depth import OracleDepth, PointmapDepth, evaluate_depth
    from pointmap.eval.runners.depth_datasets import PROTOCOLS, depth_items

    items = depth_items(benchmark, data, max_images)
    builders = {
        "pointmap": lambda: PointmapDepth(network, size=size, device=device),
        "oracle": lambda: OracleDepth(items),
    }
    methods = {name: builders[name]() for name in names}
    return evaluate_depth(benchmark, methods, items, max_depth=PROTOCOLS[benchmark].max_depth, verbose=verbose)


def _run_points(benchmark, data, names, network, size, device, frames, verbose) -> EvalResult:
    from pointmap.eval.points import OraclePoints, PointmapPoints, evaluate_points
    from pointmap.eval.report import Plot
    from pointmap.eval.runners.dtu import DtuEvalConfig, dtu_scans
    from pointmap.eval.runners.eth3d import DENSITY_M, TOLERANCE_M, Eth3dEvalConfig, eth3d_scans

    if benchmark == "dtu":
        config = DtuEvalConfig(views=frames)
        scans = dtu_scans(data, config)
        protocol = {}
    else:
        config = Eth3dEvalConfig(views=frames)
        scans = eth3d_scans(data, config)
        protocol = {"density": DENSITY_M, "max_dist": None, "tolerance": TOLERANCE_M}
    builders = {
        "pointmap": lambda: PointmapPoints(network, size=size, device=device),
        "oracle": lambda: OraclePoints(scans),
    }
    methods = {name: builders[name]() for name in names}
    result = evaluate_points(benchmark, methods, scans, verbose=verbose, **protocol)
    if benchmark == "eth3d":
        result.plots = (Plot("chamfer", "Chamfer distance (m)", 0.2),)
    result.settings.update(asdict(config))
    return result


def _run_sequences(benchmark, data, names, network, size, device, seed, frames, max_sequences, categories,
                   min_frames, resolution, orbit_m, verbose) -> EvalResult:
    from pointmap.eval.runners.co3d import Co3dEvalConfig, co3d_sequences
    from pointmap.eval.runners.realestate10k import RealEstate10kEvalConfig, realestate10k_sequences
    from pointmap.eval.synthetic_rooms import SyntheticRoomsConfig, held_out_rooms

    if benchmark in ("synthetic-rooms", "synthetic-objects"):
        image_size = size or (network.image_size if network is not None else 512)
        scene = "room" if benchmark == "synthetic-rooms" else "objects"
        config = SyntheticRoomsConfig(scene=scene, rooms=max_sequences or 8, views=frames, seed=seed,
                                      size=resolution or parse_resolution(None, image_size), device=str(device),
                                      object_distance_m=orbit_m or SyntheticRoomsConfig.object_distance_m)
        with tempfile.TemporaryDirectory(prefix="pointmap-rooms-") as folder:
            sequences = held_out_rooms(folder, config, verbose)
            result = _evaluate_sequences(benchmark, names, network, size, device, sequences, verbose)
    else:
        if benchmark == "co3d":
            config = Co3dEvalConfig(frames=frames, seed=seed, max_sequences=max_sequences, min_frames=min_frames,
                                    categories=None if categories is None else tuple(categories))
            sequences = co3d_sequences(data, config)
        else:
            config = RealEstate10kEvalConfig(frames=frames, seed=seed, max_sequences=max_sequences)
            sequences = realestate10k_sequences(data, config)
        result = _evaluate_sequences(benchmark, names, network, size, device, sequences, verbose)
    result.settings.update(asdict(config))
    return result


def _evaluate_sequences(benchmark, names, network, size, device, sequences, verbose) -> EvalResult:
    from pointmap.eval.sequences import ColmapSequences, OracleSequences, PointmapSequences, evaluate_sequences

    builders = {
        "pointmap": lambda: PointmapSequences(network, size=size, device=device),
        "pointmap-network": lambda: PointmapSequences(network, size=size, device=device, matcher=None),
        "colmap": ColmapSequences,
        "oracle": lambda: OracleSequences(sequences),
    }
    return evaluate_sequences(benchmark, {name: builders[name]() for name in names}, sequences, verbose)


def run_from_args(args: argparse.Namespace) -> EvalResult:
    """Run `pointmap eval` from parsed options (see `add_arguments`); prints the table unless --quiet."""
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    out = Path(args.out or f"eval-{args.benchmark}")
    result = run_eval(
        args.benchmark,
        data=args.data,
        out=out,
        model=args.model,
        methods=methods,
        size=args.size,
        device=args.device,
        pairs=args.pairs,
        resolution=None if args.resolution is None else parse_resolution(args.resolution, 224),
        seed=args.seed,
        frames=args.frames,
        max_sequences=args.max_sequences,
        min_frames=args.min_frames,
        max_images=args.max_images,
        photo_folder=args.photo_folder,
        photo_share=PHOTO_SHARE if args.photo_share is None else args.photo_share,
        roll_deg=args.roll_deg,
        hfov_deg=parse_hfov(args.hfov),
        kinds=None if args.kinds is None else [k.strip() for k in args.kinds.split(",") if k.strip()],
        orbit_m=args.orbit_m,
        quarter_turns=args.quarter_turns,
        flash_share=args.flash_share,
        categories=None if args.categories is None else [c.strip() for c in args.categories.split(",")],
        verbose=not args.quiet,
    )
    if not args.quiet:
        print(to_markdown(result))
        print(f"-> {out}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pointmap.eval BENCHMARK ...`; returns the exit code (0 ok, 2 bad input)."""
    parser = argparse.ArgumentParser(prog="pointmap eval", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except (OSError, ValueError, ImportError) as err:
        print(f"pointmap eval: error: {err}", file=sys.stderr)
        return 2
    return 0
