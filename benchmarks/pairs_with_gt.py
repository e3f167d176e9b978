"""Two-view poses of image pairs listed with their true poses, as SuperGlue's pair files list them.

Each line of a SuperGlue `*_pairs_with_gt.txt` file names two images, their EXIF turns, both 3x3 intrinsics and
the 4x4 transform from the first camera's frame to the second's (`T_0to1`), all row-major:

    name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)

The SuperGlue repository ships 15 ScanNet test pairs with their images (`assets/scannet_sample_pairs_with_gt.txt`,
`assets/scannet_sample_images/`): wide-baseline indoor pairs of the kind issue 8 is measured on (ScanNet images are
for non-commercial research: read them from a checkout, never copy them into this repository). Each pair goes
through `pointmap.reconstruct([a, b])` with its defaults (`--matcher none`: the network's pose alone;
`--calibrated`: the true intrinsics given and held, as SuperGlue and LoFTR score these pairs); the script
prints the pose AUC at 5 / 10 / 20 deg of the larger of the rotation and translation-direction errors (SuperGlue's
score) and the median errors:

    python benchmarks/pairs_with_gt.py --pairs SUPERGLUE/assets/scannet_sample_pairs_with_gt.txt \\
        --images SUPERGLUE/assets/scannet_sample_images
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import pointmap
from pointmap.eval.metrics import pose_auc, relative_pose_errors


@dataclass
class TruePair:
    name0: str
    name1: str
    intrinsics: np.ndarray  # (2, 3, 3) K of each image in its stored pixels
    first_to_second: np.ndarray  # (4, 4) camera 0 frame -> camera 1 frame


def read_pairs(path: Path) -> list[TruePair]:
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 38:
            raise ValueError(f"{path}:{number}: {len(fields)} fields; a pair with its truth has 38")
        if fields[2] != "0" or fields[3] != "0":
            raise ValueError(f"{path}:{number}: EXIF turns {fields[2]} {fields[3]}; only unturned pairs are read")
        intrinsics = np.array(fields[4:22], dtype=float).reshape(2, 3, 3)
        pairs.append(TruePair(fields[0], fields[1], intrinsics, np.array(fields[22:38], dtype=float).reshape(4, 4)))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def pair_errors(pair: TruePair, images: Path, model, matcher: str | None, device: str, calibrated: bool) -> dict:
    """Rotation and translation-direction errors (degrees) of one pair's reconstruction, and its focals against
    the true ones (ratios, found / true)."""
    scene = pointmap.reconstruct(
        [images / pair.name0, images / pair.name1],
        model=model,
        matcher=matcher,
        device=device,
        intrinsics=pair.intrinsics if calibrated else None,
        verbose=False,
    )
    poses = scene.poses.detach().double().cpu().numpy()  # (2, 4, 4) cam2world
    estimated = np.linalg.inv(poses[0]) @ poses[1]  # camera 1 -> camera 0
    rotation, translation = relative_pose_errors(estimated, np.linalg.inv(pair.first_to_second))
    focal_ratios = scene.original_intrinsics()[:, 0, 0].double().numpy() / pair.intrinsics[:, 0, 0]
    return {
        "pair": [pair.name0, pair.name1],
        "rotation_deg": float(rotation),
        "translation_deg": float(translation),
        "focal_ratio": [round(float(ratio), 3) for ratio in focal_ratios],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True, help="SuperGlue pair file with true poses")
    parser.add_argument("--images", type=Path, required=True, help="folder of the pairs' images")
    parser.add_argument("--model", default=None, help="checkpoint (.pth, hub folder or id); default: the bundled model")
    parser.add_argument("--matcher", default="xfeat", choices=["xfeat", "none"], help="none: the network's poses")
    parser.add_argument("--calibrated", action="store_true", help="pass the true intrinsics (held fixed)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="write each pair's errors as JSON here too")
    args = parser.parse_args(argv)

    pairs = read_pairs(args.pairs)
    model = pointmap.load_model(args.model, device=args.device)
    matcher = None if args.matcher == "none" else args.matcher
    start = time.perf_counter()
    rows = []
    for pair in pairs:
        row = pair_errors(pair, args.images, model, matcher, args.device, args.calibrated)
        rows.append(row)
        print(
            f"{pair.name0} {pair.name1}: rotation {row['rotation_deg']:.1f} deg, translation direction"
            f" {row['translation_deg']:.1f} deg, focal {' / '.join(map(str, row['focal_ratio']))} x the true one"
        )
    seconds = time.perf_counter() - start
    rotation = np.array([row["rotation_deg"] for row in rows])
    translation = np.array([row["translation_deg"] for row in rows])
    auc = [100 * value for value in pose_auc(np.maximum(rotation, translation), (5, 10, 20))]
    focal_error = np.abs(np.log([row["focal_ratio"] for row in rows]))
    print(
        f"{len(rows)} pairs ({seconds / len(rows):.1f} s each): AUC@5/10/20 {' / '.join(f'{v:.1f}' for v in auc)},"
        f" median rotation error {np.median(rotation):.1f} deg, translation direction {np.median(translation):.1f} deg,"
        f" median focal error {100 * np.expm1(np.median(focal_error)):.0f} %"
    )
    if args.out is not None:
        from pointmap.io_utils import atomic_write_text

        atomic_write_text(args.out, json.dumps({"auc@5/10/20": auc, "pairs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
