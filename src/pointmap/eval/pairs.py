"""Two-view evaluation: score one method's estimate of a pair against ground truth, then summarise groups."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pointmap.data.sample import ViewSample
from pointmap.eval.metrics import accuracy_at, as_numpy, depth_metrics, pose_auc, relative_pose_errors, turn_ratios
from pointmap.eval.report import EvalResult, Plot
from pointmap.geometry.cameras import invert_pose

AUC_THRESHOLDS = (5, 10, 20)


@dataclass
class PairEstimate:
    """What a method says about an image pair (OpenCV axes, processed or original pixels alike).

    Attributes:
        cam2_to_cam1: (4, 4) pose of camera 2 in camera 1's frame (any translation scale), or None when
            the method failed on this pair.
        depth1, depth2: (H, W) z-depth of each view at the ground truth's resolution, any scale, or None
            when the method gives no dense depth (its depth columns stay empty).
        seconds: wall time the method spent on the pair.
    """

    cam2_to_cam1: np.ndarray | None
    depth1: np.ndarray | None = None
    depth2: np.ndarray | None = None
    seconds: float = 0.0


@dataclass
class PairTruth:
    """Ground truth of a pair.

    Attributes:
        cam2_to_cam1: (4, 4) rigid pose of camera 2 in camera 1's frame.
        depth1, depth2: (H, W) z-depth, <= 0 where unknown; None when the benchmark has none.
    """

    cam2_to_cam1: np.ndarray
    depth1: np.ndarray | None = None
    depth2: np.ndarray | None = None


PairMethod = Callable[..., PairEstimate]
"""A method under evaluation: called with the benchmark's inputs of a pair, returns a PairEstimate."""


def score_pair(estimate: PairEstimate, truth: PairTruth, depth_align: str = "median") -> dict[str, float]:
    """Pose and depth errors of one pair.

    The pose is compared as the protocol of ScanNet-1500 does, on T_1to2 = inv(cam2_to_cam1) (x2 = R x1 + t):
    rotation angle, and angle between translation directions up to sign; the pose error is their max.
    Depth metrics (median-scaled per image) are the mean over the two views.

    The turn ratio (`metrics.turn_ratios`) is the estimated relative rotation angle over the true one, for pairs
    that turn at least 15 degrees: under 1 when a method under-rotates.

    Returns:
        {"failed", "rot_err", "trans_err", "pose_err", "turn_ratio", "abs_rel", "delta_1.25", "seconds"}; errors
        in degrees, inf for a failed pose; turn ratio NaN for a failed pose or a small true turn; depth NaN when
        the method or the benchmark has no depth.
    """
    failed = estimate.cam2_to_cam1 is None or not np.isfinite(as_numpy(estimate.cam2_to_cam1)).all()
    turn_ratio = math.nan
    if failed:
        rot_err = trans_err = math.inf
    else:
        rot, trans = relative_pose_errors(
            np.linalg.inv(as_numpy(estimate.cam2_to_cam1)), np.linalg.inv(as_numpy(truth.cam2_to_cam1))
        )
        rot_err = float(rot)
        trans_err = float(trans) if np.isfinite(trans) else math.inf
        turn_ratio = float(turn_ratios(as_numpy(estimate.cam2_to_cam1)[:3, :3], as_numpy(truth.cam2_to_cam1)[:3, :3]))
    depth = {"abs_rel": math.nan, "delta_1.25": math.nan}
    views = [(estimate.depth1, truth.depth1), (estimate.depth2, truth.depth2)]
    scored = [depth_metrics(pred, gt, align=depth_align) for pred, gt in views if pred is not None and gt is not None]
    if scored:
        depth = {key: float(np.mean([s[key] for s in scored])) for key in depth}
    return {
        "failed": bool(failed),
        "rot_err": rot_err,
        "trans_err": trans_err,
        "pose_err": max(rot_err, trans_err),
        "turn_ratio": turn_ratio,
        **depth,
        "seconds": float(estimate.seconds),
    }


def summarize_pairs(records: Sequence[dict]) -> dict[str, float]:
    """One table row from pair records (score_pair outputs): counts, medians, AUCs, mean depth errors, and the
    median turn ratio of the pairs that have one.

    Failures stay in every statistic: their pose error is inf, so they lower the AUCs and raise medians.
    """
    pose_err = np.array([r["pose_err"] for r in records], dtype=np.float64)
    rot_err = np.array([r["rot_err"] for r in records], dtype=np.float64)
    trans_err = np.array([r["trans_err"] for r in records], dtype=np.float64)
    aucs = pose_auc(pose_err, AUC_THRESHOLDS)

    def finite_mean(key: str) -> float:
        values = np.array([r[key] for r in records], dtype=np.float64)
        values = values[~np.isnan(values)]
        return float(np.mean(values)) if len(values) else math.nan

    ratios = np.array([r["turn_ratio"] for r in records], dtype=np.float64)
    ratios = ratios[~np.isnan(ratios)]
    return {
        "pairs": len(records),
        "failed": int(sum(r["failed"] for r in records)),
        "rot_med": float(np.median(rot_err)) if len(records) else math.nan,
        "trans_med": float(np.median(trans_err)) if len(records) else math.nan,
        "acc@3": accuracy_at(rot_err, 3.0),
        "turn_ratio": float(np.median(ratios)) if len(ratios) else math.nan,
        **{f"auc@{t}": 100 * auc for t, auc in zip(AUC_THRESHOLDS, aucs, strict=True)},
        "abs_rel": finite_mean("abs_rel"),
        "delta_1.25": finite_mean("delta_1.25"),
        "seconds": finite_mean("seconds"),
    }


PAIR_COLUMNS = (
    "pairs", "failed", "rot_med", "trans_med", "acc@3", "auc@5", "auc@10", "auc@20", "turn_ratio", "abs_rel",
    "delta_1.25", "seconds",
)
"""Summary keys shown in the table of a two-view benchmark, in order."""
PAIR_PLOTS = (Plot("pose_err", "pose error, max(rotation, translation) (deg)", 30.0),
              Plot("abs_rel", "depth AbsRel (median scaled)", 0.5))


def pair_truth(view1: ViewSample, view2: ViewSample) -> PairTruth:
    """Ground truth of a pair of samples: relative pose from the two cam2world, depth (0 where not valid)."""
    cam2_to_cam1 = invert_pose(view1.cam2world.double()[None])[0] @ view2.cam2world.double()
    return PairTruth(
        cam2_to_cam1=cam2_to_cam1.cpu().numpy(),
        depth1=(view1.depth * view1.valid).double().cpu().numpy(),
        depth2=(view2.depth * view2.valid).double().cpu().numpy(),
    )


def evaluate_pairs(
    benchmark: str,
    methods: Mapping[str, PairMethod],
    items: Iterable[tuple[str, str, ViewSample, ViewSample, dict]],
    groups: Sequence[str] = (),
) -> EvalResult:
    """Every method on the same pairs: a record per (method, pair), a row per (method, group) and "all".

    Args:
        benchmark: the name in the report.
        methods: name -> pair method, each called with (view1, view2).
        items: (item name, group, view1, view2, extra record fields) per pair, ground truth in the samples.
            A method raising RuntimeError or ValueError on a pair fails it (message in the record's "error").
        groups: the groups that get a table row, in order, even when empty (0 pairs); "all" is added.
    Returns:
        EvalResult with columns PAIR_COLUMNS and plots PAIR_PLOTS.
    """
    if not methods:
        raise ValueError(f"{benchmark}: no method to evaluate; pass e.g. {{'sift': SiftPairs()}}")
    records = []
    for name, group, view1, view2, extra in items:
        truth = pair_truth(view1, view2)
        for method_name, method in methods.items():
            error = None
            try:
                estimate = method(view1, view2)
            except (RuntimeError, ValueError) as err:
                # A pair that breaks a method is that method's failure on it, not the end of the run.
                error = f"{type(err).__name__}: {err}"
                warnings.warn(f"{benchmark}: {method_name} failed on {name} ({error}); counted", stacklevel=2)
                estimate = PairEstimate(None)
            scores = score_pair(estimate, truth)
            records.append({"method": method_name, "item": name, "group": group, **extra, **scores, "error": error})
    summary = []
    for method_name in methods:
        for group in [*groups, "all"]:
            chosen = [r for r in records if r["method"] == method_name and group in ("all", r["group"])]
            summary.append({"method": method_name, "group": group, **summarize_pairs(chosen)})
    return EvalResult(benchmark, {"methods": list(methods)}, records, summary, PAIR_COLUMNS, PAIR_PLOTS)
