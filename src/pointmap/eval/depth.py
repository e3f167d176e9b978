"""Monocular depth evaluation: each method predicts a depth map per image; AbsRel and delta<1.25 per image.

Following DUSt3R's Tab. 3 (zero-shot monocular depth): every prediction is median-scaled to the ground
truth per image, metrics are computed over the valid ground-truth pixels inside the protocol's crop and
depth range, and averaged over images. A failed prediction scores the worst value of every metric.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
from tqdm import tqdm

from pointmap.eval.metrics import depth_metrics
from pointmap.eval.report import EvalResult, Plot

DepthMethod = Callable[[str], np.ndarray | None]
"""A monocular depth method: image path -> (H, W) depth at the original image's resolution (any scale),
NaN outside what it predicts, or None on failure."""

DEPTH_COLUMNS = ("images", "failed", "abs_rel", "delta_1.25", "tau_1.03", "seconds")
"""Summary keys shown in the table of a depth benchmark, in order."""
DEPTH_PLOTS = (Plot("abs_rel", "depth AbsRel (median scaled)", 0.5),)


class PointmapDepth:
    """pointmap's monocular depth: the network on the pair (I, I), resampled to the photo's pixels."""

    def __init__(self, model: torch.nn.Module, size: int | None = None, device: str | torch.device = "cpu"):
        self.model, self.size, self.device = model, size, device

    def __call__(self, path: str) -> np.ndarray:
        from pointmap.eval.methods import depth_to_original
        from pointmap.images import load_images
        from pointmap.two_view import monocular_depth

        (view,) = load_images([path], size=self.size or self.model.image_size, verbose=False)
        return depth_to_original(monocular_depth(self.model, view, device=self.device).depth, view)


DepthItem = tuple[str, str, str, Callable[[], tuple[np.ndarray, np.ndarray]]]
"""(item name, group, image path, ground-truth loader -> ((H, W) depth, (H, W) bool pixels to evaluate)).
The loader reads on demand, so a benchmark of thousands of images never holds all its depth maps."""


class OracleDepth:
    """The ground truth of known images (a harness check: every metric perfect)."""

    def __init__(self, items: Iterable[DepthItem]):
        self.loaders = {path: load for _, _, path, load in items}

    def __call__(self, path: str) -> np.ndarray:
        depth, valid = self.loaders[path]()
        return 3.0 * np.where(valid, depth, np.nan)  # another scale: median scaling must undo it


def evaluate_depth(
    benchmark: str,
    methods: Mapping[str, DepthMethod],
    items: Iterable[DepthItem],
    max_depth: float | None = None,
    verbose: bool = True,
) -> EvalResult:
    """Every method on the same images.

    Args:
        benchmark: the name in the report.
        methods: name -> depth method.
        items: see DepthItem.
        max_depth: ground truth beyond this is ignored (the protocol's cap).
        verbose: a progress bar.
    Returns:
        EvalResult: a record per (method, image), a row per (method, group) averaging its images, and "all".
    """
    if not methods:
        raise ValueError(f"{benchmark}: no method to evaluate; pass e.g. {{'pointmap': PointmapDepth(model)}}")
    records = []
    for name, group, path, load in tqdm(items, desc=benchmark, unit="image", disable=not verbose):
        depth_gt, valid = load()
        for method_name, method in methods.items():
            start, error = time.perf_counter(), None
            try:
                prediction = method(path)
            except (RuntimeError, ValueError) as err:
                error = f"{type(err).__name__}: {err}"
                warnings.warn(f"{benchmark}: {method_name} failed on {name} ({error}); counted", stacklevel=2)
                prediction = None
            seconds = time.perf_counter() - start
            if prediction is not None and prediction.shape != depth_gt.shape:
                raise ValueError(
                    f"{benchmark}: {method_name} gave depth of shape {prediction.shape} for {path}, whose ground "
                    f"truth is {depth_gt.shape}; return depth at the image's resolution"
                )
            scores = depth_metrics(prediction, depth_gt, valid, align="median", max_depth=max_depth)
            records.append({"method": method_name, "item": name, "group": group, **scores,
                            "failed": prediction is None, "seconds": seconds, "error": error})
    groups = list(dict.fromkeys(r["group"] for r in records))
    summary = []
    for method_name in methods:
        for group in groups + (["all"] if groups != ["all"] else []):
            chosen = [r for r in records if r["method"] == method_name and group in ("all", r["group"])]
            summary.append({"method": method_name, "group": group, **_mean_row(chosen)})
    return EvalResult(benchmark, {"methods": list(methods), "max_depth": max_depth}, records, summary,
                      DEPTH_COLUMNS, DEPTH_PLOTS)


def _mean_row(records: list[dict]) -> dict:
    def mean(key: str) -> float:
        values = [r[key] for r in records if not math.isnan(r[key])]
        return float(np.mean(values)) if values else math.nan

    return {
        "images": len(records),
        "failed": int(sum(r["failed"] for r in records)),
        **{key: mean(key) for key in ("abs_rel", "delta_1.25", "tau_1.03", "seconds")},
    }
