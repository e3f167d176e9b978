"""Multi-view point-cloud evaluation: each method reconstructs a scan; accuracy, completeness, Chamfer.

An uncalibrated reconstruction lives in its own frame and scale, so it is moved onto the ground truth by the
similarity that best maps its camera centres onto the true ones (Umeyama); no ground-truth point guides it.
Then the DTU protocol applies: prediction thinned to one point per `density` cell, kept inside the
observability mask, distances above `max_dist` left out (see `metrics.point_cloud_metrics`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pointmap.eval.metrics import f_score, point_cloud_metrics
from pointmap.eval.report import EvalResult, Plot
from pointmap.geometry.procrustes import similarity_matrix, weighted_procrustes

PointsMethod = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]
"""A multi-view method: N image paths -> ((N, 4, 4) cam2world, (P, 3) points), in one frame of its own."""

POINTS_COLUMNS = ("scans", "failed", "accuracy", "completeness", "chamfer", "seconds")
"""Summary keys shown in the table of a point-cloud benchmark, in order."""
POINTS_PLOTS = (Plot("chamfer", "Chamfer distance (mm)", 10.0),)


@dataclass
class PointsScan:
    """One scan of a point-cloud benchmark.

    Attributes:
        name: e.g. "scan1".
        paths: N image paths.
        cam2world: (N, 4, 4) ground-truth poses (OpenCV axes, benchmark units).
        load_points: reads the (Q, 3) ground-truth points (lazily: they are large).
        in_mask: (P, 3) -> (P,) bool, the region where predicted points are scored (the observability mask).
        above_ground: (Q, 3) -> (Q,) bool, the ground-truth points completeness is measured on (accuracy
            uses them all).
    """

    name: str
    paths: list[str]
    cam2world: np.ndarray
    load_points: Callable[[], np.ndarray]
    in_mask: Callable[[np.ndarray], np.ndarray]
    above_ground: Callable[[np.ndarray], np.ndarray]


def everywhere(points: np.ndarray) -> np.ndarray:
    """(P,) all True: a scan without an observability mask or ground plane scores every point."""
    return np.ones(len(points), dtype=bool)


class PointmapPoints:
    """pointmap's reconstruct pipeline with its defaults; the scene's confident points (its masks)."""

    def __init__(self, model: torch.nn.Module, size: int | None = None, device: str | torch.device = "cpu"):
        self.model, self.size, self.device = model, size, device

    def __call__(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        from pointmap.pipeline import reconstruct

        scene = reconstruct(list(paths), model=self.model, size=self.size, device=self.device, verbose=False)
        points = torch.cat([pts[mask] for pts, mask in zip(scene.points, scene.masks, strict=True)])
        return scene.photo_poses().numpy(), points.detach().double().cpu().numpy()


class OraclePoints:
    """The ground truth of known scans in another frame and scale (a harness check: every metric ~0)."""

    def __init__(self, scans: Iterable[PointsScan]):
        self.scans = {tuple(scan.paths): scan for scan in scans}

    def __call__(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        scan = self.scans[tuple(paths)]
        moved = np.eye(4)
        moved[:3, :3] = 0.01 * np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        moved[:3, 3] = [0.5, -2.0, 1.0]
        poses = moved @ scan.cam2world
        poses[:, :3, :3] /= 0.01  # rotations stay rotations; the centres carry the scale
        points = scan.load_points() @ moved[:3, :3].T + moved[:3, 3]
        return poses, points


def align_to_cameras(cam2world_est: np.ndarray, cam2world_gt: np.ndarray) -> np.ndarray:
    """(4, 4) similarity taking the estimated frame to the ground truth's, fitted on camera centres.

    Args:
        cam2world_est, cam2world_gt: (N, 4, 4), N >= 3 cameras not all on a line.
    """
    if len(cam2world_gt) < 3:
        raise ValueError(f"{len(cam2world_gt)} cameras cannot fix a similarity; evaluate scans of 3 or more images")
    src = torch.as_tensor(cam2world_est[:, :3, 3], dtype=torch.float64)[None]
    dst = torch.as_tensor(cam2world_gt[:, :3, 3], dtype=torch.float64)[None]
    scale, rotation, translation = weighted_procrustes(src, dst)
    return similarity_matrix(scale, rotation, translation)[0].numpy()


def thin_points(points: np.ndarray, cell: float) -> np.ndarray:
    """One point per occupied cube of side `cell` (the first in input order): an even density, as DTU's
    0.2 mm down-sampling asks."""
    if len(points) == 0:
        return points
    keys = np.floor(points / cell).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(first)]


def evaluate_points(
    benchmark: str,
    methods: Mapping[str, PointsMethod],
    scans: Iterable[PointsScan],
    density: float = 0.2,
    max_dist: float | None = 20.0,
    tolerance: float | None = None,
    verbose: bool = True,
) -> EvalResult:
    """Every method on the same scans; one record per (method, scan), a row per method averaging scans.

    Args:
        density: cell size of the prediction's thinning (benchmark units; DTU: 0.2 mm).
        max_dist: nearest-neighbour distances above this are left out (DTU: 20 mm); None keeps all.
        tolerance: also score precision, recall and F1 at this distance (ETH3D); None skips them.
    """
    if not methods:
        raise ValueError(f"{benchmark}: no method to evaluate; pass e.g. {{'pointmap': PointmapPoints(model)}}")
    records = []
    for scan in tqdm(list(scans), desc=benchmark, unit="scan", disable=not verbose):
        gt_points = scan.load_points()
        gt_above = gt_points[scan.above_ground(gt_points)]
        for method_name, method in methods.items():
            start, error = time.perf_counter(), None
            try:
                cam2world, points = method(scan.paths)
                to_gt = align_to_cameras(np.asarray(cam2world, dtype=np.float64), scan.cam2world)
                aligned = np.asarray(points, dtype=np.float64) @ to_gt[:3, :3].T + to_gt[:3, 3]
                aligned = thin_points(aligned[np.isfinite(aligned).all(1)], density)
                scored = aligned[scan.in_mask(aligned)]
                scores = point_cloud_metrics(scored, gt_points, max_dist, gt_above)
                if tolerance is not None:
                    scores.update(f_score(scored, gt_above, tolerance))
            except (RuntimeError, ValueError) as err:
                error = f"{type(err).__name__}: {err}"
                warnings.warn(f"{benchmark}: {method_name} failed on {scan.name} ({error}); counted", stacklevel=2)
                scores = point_cloud_metrics(np.zeros((0, 3)), gt_points, max_dist, gt_above)
                if tolerance is not None:
                    scores.update(f_score(np.zeros((0, 3)), gt_above, tolerance))
            records.append({"method": method_name, "item": scan.name, "group": "all", **scores,
                            "failed": error is not None, "seconds": time.perf_counter() - start, "error": error})
    columns = POINTS_COLUMNS if tolerance is None else (*POINTS_COLUMNS[:-1], "precision", "recall", "f1", "seconds")
    summary = []
    for method_name in methods:
        chosen = [r for r in records if r["method"] == method_name]
        row = {"method": method_name, "group": "all", "scans": len(chosen), "failed": sum(r["failed"] for r in chosen)}
        for key in columns[2:]:
            row[key] = float(np.mean([r[key] for r in chosen])) if chosen else math.nan
        summary.append(row)
    settings = {"methods": list(methods), "density": density, "max_dist": max_dist, "tolerance": tolerance}
    return EvalResult(benchmark, settings, records, summary, columns, POINTS_PLOTS)
