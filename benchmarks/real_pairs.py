"""Two-view poses of real photo pairs: every pair of a held-out set through `pointmap.reconstruct` on its own.

The wide-baseline indoor pairs that issue 8 is measured on are pairs, not sets: each is reconstructed from its
two photos alone, so the pipeline has one pair's matches and no other view to fix the focal. This runs that case
on the sets of benchmarks/real_pictures.toml (photos and COLMAP reference cameras prepared by
`benchmarks/real_pictures.py --prepare-from`): for every pair of photos both registered by COLMAP it runs
`pointmap.reconstruct([a, b])` with its defaults (`--matcher none`: the network's pose alone) and prints, per
set, the median rotation and translation-direction errors, the share of pairs within 15 degrees on both, and
the pose AUC at 5 / 10 / 20 degrees of the larger of the two errors (as SuperGlue's and LoFTR's indoor
benchmarks score pairs), with the median focal found:

    python benchmarks/real_pairs.py --sets tum-office                # the bundled model, CPU
    python benchmarks/real_pairs.py --sets tum-office --matcher none
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

import pointmap
from pointmap.eval.metrics import pose_auc, relative_pose_errors
from real_pictures import DEFAULT_DATA, REFERENCE_FILE  # the sets real_pictures.py prepares


def pair_errors(files: list[Path], reference: dict, model, matcher: str | None, device: str) -> dict:
    """Rotation and translation-direction errors (degrees) and focal (processed pixels) of every pair of `files`."""
    rotation_errors, translation_errors, focals = [], [], []
    for a, b in itertools.combinations(files, 2):
        scene = pointmap.reconstruct([a, b], model=model, matcher=matcher, device=device, verbose=False)
        poses = scene.poses.detach().double().cpu().numpy()  # (2, 4, 4) cam2world
        estimated = np.linalg.inv(poses[0]) @ poses[1]  # cam b -> cam a
        true = np.linalg.inv(np.asarray(reference[a.name])) @ np.asarray(reference[b.name])
        rotation, translation = relative_pose_errors(estimated, true)
        rotation_errors.append(float(rotation))
        translation_errors.append(float(translation))
        focals.append(float(scene.intrinsics[:, 0, 0].mean()))
    return {
        "rotation": np.asarray(rotation_errors),
        "translation": np.asarray(translation_errors),
        "focal": np.asarray(focals),
    }


def summarise(name: str, errors: dict, seconds: float) -> dict:
    rotation, translation = errors["rotation"], errors["translation"]
    auc = pose_auc(np.maximum(rotation, translation), (5, 10, 20))
    return {
        "set": name,
        "pairs": len(rotation),
        "seconds_per_pair": round(seconds / max(len(rotation), 1), 2),
        "rre_median_deg": round(float(np.median(rotation)), 2),
        "rte_median_deg": round(float(np.median(translation)), 2),
        "pairs_within_15deg": round(float(np.mean((rotation < 15) & (translation < 15))), 3),
        "auc@5/10/20": [round(100 * value, 1) for value in auc],
        "focal_median_px": round(float(np.median(errors["focal"])), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (.pth, hub folder or id); default: the bundled model")
    parser.add_argument("--sets", nargs="+", default=["tum-office"], help="set names under --data")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="prepared sets (real_pictures.py)")
    parser.add_argument("--matcher", default="xfeat", choices=["xfeat", "none"], help="none: the network's poses")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    args = parser.parse_args(argv)

    model = pointmap.load_model(args.model, device=args.device)
    matcher = None if args.matcher == "none" else args.matcher
    results = []
    for name in args.sets:
        set_dir = args.data / name
        reference = json.loads((set_dir / REFERENCE_FILE).read_text())["cam2world"]
        files = sorted(path for path in (set_dir / "images").iterdir() if path.name in reference)
        start = time.perf_counter()
        errors = pair_errors(files, reference, model, matcher, args.device)
        result = summarise(name, errors, time.perf_counter() - start)
        results.append(result)
        print(
            f"{name:<12} {result['pairs']:>3} pairs ({result['seconds_per_pair']:.1f} s each): median rotation error"
            f" {result['rre_median_deg']:.1f} deg, translation direction {result['rte_median_deg']:.1f} deg,"
            f" {100 * result['pairs_within_15deg']:.0f} % within 15 deg, AUC@5/10/20"
            f" {' / '.join(f'{value:.1f}' for value in result['auc@5/10/20'])}, median focal"
            f" {result['focal_median_px']:.0f} px (processed)"
        )
    if args.out is not None:
        from pointmap.io_utils import atomic_write_text

        atomic_write_text(args.out, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
