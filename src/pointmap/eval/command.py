"""`pointmap eval BENCHMARK`: pick the benchmark and methods, run, print and save the table."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pointmap.eval.report import EvalResult, save_result, to_markdown

PAIR_METHODS = ("pointmap", "sift", "oracle")
"""Methods of the two-view benchmarks; "oracle" returns the ground truth (a check of the harness)."""
SEQUENCE_METHODS = ("pointmap", "colmap")
"""Methods of the multi-view pose benchmarks."""
BENCHMARKS = ("synthetic",)
"""Benchmarks `run_eval` knows."""
DEFAULT_METHODS = {"synthetic": ("pointmap", "sift")}

EPILOG = """benchmarks:
  synthetic   held-out procedural pairs (seeds training never uses): two-view pose and depth per overlap bucket

outputs in OUT (default eval-BENCHMARK/): results.json (every item and the table), results.md (the table),
*.png (cumulative error distributions, needs matplotlib)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pointmap eval` (shared by `pointmap.cli` and `main`)."""
    parser.add_argument("benchmark", choices=BENCHMARKS, help="which benchmark")
    parser.add_argument("--data", default=None, help="the benchmark's folder (not needed for synthetic)")
    parser.add_argument("-o", "--out", default=None, help="output folder (default: eval-BENCHMARK)")
    parser.add_argument("--model", default=None, help="checkpoint file, hub folder or hub id (default: bundled)")
    parser.add_argument("--size", type=int, choices=(224, 512), default=None,
                        help="network image size (default: the model's)")
    parser.add_argument("--device", default="cpu", help="torch device for the network (default: cpu)")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated, from {', '.join(PAIR_METHODS)} (default: pointmap,sift)")
    parser.add_argument("--pairs", type=int, default=64, help="synthetic: number of held-out pairs (64)")
    parser.add_argument("--resolution", default=None, metavar="HxW",
                        help="synthetic: render size, multiples of 16 (default: 224x224, 384x512 for size 512)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic: base seed of the held-out split (0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no printed table")


def parse_resolution(text: str | None, size: int) -> tuple[int, int]:
    """(H, W) from "HxW", or the default of the network size (224 -> 224x224, 512 -> 384x512)."""
    if text is None:
        return (224, 224) if size == 224 else (384, 512)
    try:
        height, width = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--resolution {text!r}: pass HxW, e.g. 224x224 or 384x512") from None
    return height, width


def run_eval(
    benchmark: str,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    model: nn.Module | str | os.PathLike | None = None,
    methods: Sequence[str] | None = None,
    size: int | None = None,
    device: str | torch.device = "cpu",
    pairs: int = 64,
    resolution: tuple[int, int] | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> EvalResult:
    """Run a benchmark, save results.json / results.md / plots into `out` (when given) and return the result.

    Args:
        benchmark: one of BENCHMARKS.
        data: the dataset folder (None for "synthetic").
        out: output folder, or None to write nothing.
        model: a loaded network, a checkpoint path or hub id, or None for the bundled model; loaded only
            when "pointmap" is among the methods.
        methods: names from PAIR_METHODS; default DEFAULT_METHODS[benchmark].
        size: network image size (224 or 512); default the model's.
        device: where the network runs.
        pairs, resolution, seed: the synthetic set (see SyntheticEvalConfig).
        verbose: progress bars.
    """
    from pointmap.eval.baselines import SiftPairs
    from pointmap.eval.methods import PointmapPairs, oracle_pairs
    from pointmap.eval.synthetic import SyntheticEvalConfig, evaluate_synthetic

    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark {benchmark!r} unknown; pick one of {', '.join(BENCHMARKS)}")
    names = tuple(methods or DEFAULT_METHODS[benchmark])
    unknown = [name for name in names if name not in PAIR_METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} unknown for {benchmark}; pick from {', '.join(PAIR_METHODS)}")
    network = None
    if "pointmap" in names:
        from pointmap.pipeline import resolve_model

        network = resolve_model(model, device)
    image_size = size or (network.image_size if network is not None else 224)
    builders = {
        "pointmap": lambda: PointmapPairs(network, device=device),
        "sift": SiftPairs,
        "oracle": lambda: oracle_pairs,
    }
    chosen = {name: builders[name]() for name in names}
    config = SyntheticEvalConfig(pairs=pairs, size=resolution or parse_resolution(None, image_size), seed=seed)
    result = evaluate_synthetic(chosen, config, verbose=verbose)
    result.settings["model"] = None if model is None or isinstance(model, nn.Module) else str(model)
    if out is not None:
        save_result(result, out)
    return result


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
        verbose=not args.quiet,
    )
    if not args.quiet:
        print(to_markdown(result))
        print(f"-> {out}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pointmap.eval BENCHMARK ...`; returns the exit code (0 ok, 2 bad input)."""
    import sys

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
