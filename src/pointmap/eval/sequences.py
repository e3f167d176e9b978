"""Multi-view pose evaluation: each method poses every sequence; RRA@15, RTA@15 and mAA(30) over all pairs.

Following DUSt3R's Tab. 2 (after PoseDiffusion): the errors of every image pair i < j of a category's
sequences are pooled into that category's row, and the "all" row is the mean of the category rows.

Where a sequence's images have true depth maps beside them (`true_depth_path`: the synthetic scenes) and a
method gives its dense depths (`SequenceEstimate`), the depths are scored too, with one scale for the whole
sequence (the median ratio over every pixel, as the poses' scale is free): AbsRel and the share within 1.25
(`depth_errors`), averaged over a group's sequences.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from tqdm import tqdm

from pointmap.eval.metrics import accuracy_at, depth_metrics, mean_average_accuracy, pairwise_pose_errors
from pointmap.eval.report import EvalResult, Plot


@dataclass
class SequenceEstimate:
    """What a method gives for one sequence when it gives depths too."""

    poses: np.ndarray
    """(N, 4, 4) cam2world, NaN rows for lost cameras."""
    depth_samples: list[np.ndarray]
    """Per image (M, 3) rows [x, y, depth]: (x, y) in the image file's pixels (centres at integers), depth in
    the estimate's own scale."""


SequenceMethod = Callable[[Sequence[str]], "np.ndarray | SequenceEstimate"]
"""A multi-view method: image paths of one sequence -> (N, 4, 4) cam2world (NaN rows for lost cameras), or a
`SequenceEstimate` with its depths."""

DEPTH_COLUMNS = ("depth_absrel", "depth_d1")
SEQUENCE_COLUMNS = ("sequences", "lost", "rra@15", "rta@15", "maa@30", "rot_med", *DEPTH_COLUMNS, "seconds")
"""Summary keys shown in the table of a multi-view pose benchmark, in order."""
SEQUENCE_PLOTS = (Plot("rot_med", "median relative rotation error of a sequence (deg)", 30.0),)


class PointmapSequences:
    """pointmap's reconstruct pipeline (complete graph, global alignment), uncalibrated; with its default
    feature matches, or the network's poses alone with `matcher=None`."""

    def __init__(self, model: torch.nn.Module, size: int | None = None, device: str | torch.device = "cpu",
                 matcher: str | None = "xfeat"):
        self.model, self.size, self.device, self.matcher = model, size, device, matcher

    def __call__(self, paths: Sequence[str]) -> SequenceEstimate:
        from pointmap.pipeline import reconstruct

        scene = reconstruct(
            list(paths), model=self.model, size=self.size, device=self.device, matcher=self.matcher, verbose=False
        )
        samples = [
            depth_samples(depth.detach().float().cpu().numpy(), view.photo_map())  # depths on the processed pixels
            for view, depth in zip(scene.views, scene.depths, strict=True)
        ]
        return SequenceEstimate(scene.photo_poses().numpy(), samples)


class ColmapSequences:
    """COLMAP (pycolmap) on the original images, uncalibrated; see `baselines.colmap_poses`."""

    def __call__(self, paths: Sequence[str]) -> np.ndarray:
        from pointmap.eval.baselines import colmap_poses

        images = []
        for path in paths:
            with PIL.Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
        return colmap_poses(images)


class OracleSequences:
    """The ground-truth poses of known sequences, moved by a similarity: scores perfectly (a harness check)."""

    def __init__(self, sequences: Iterable[tuple[str, str, list[str], np.ndarray]]):
        self.poses = {path: pose for _, _, paths, poses in sequences for path, pose in zip(paths, poses, strict=True)}

    def __call__(self, paths: Sequence[str]) -> np.ndarray | SequenceEstimate:
        world_change = np.eye(4)
        world_change[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        world_change[:3, 3] = [1.0, 2.0, 3.0]
        poses = world_change @ np.stack([self.poses[path] for path in paths])
        poses[:, :3, 3] *= 0.5  # another world frame and scale: the metrics must not see either
        if not all(true_depth_path(path).is_file() for path in paths):
            return poses
        return SequenceEstimate(poses, [depth_samples(0.5 * np.load(true_depth_path(path))) for path in paths])


def depth_samples(depth: np.ndarray, to_photo: np.ndarray | None = None) -> np.ndarray:
    """(H * W, 3) rows [x, y, depth] of every pixel of an (H, W) depth map, (x, y) carried into the image file's
    pixels by `to_photo` (3, 3; e.g. `View.photo_map`, None where the map is the file's own)."""
    rows, columns = np.indices(depth.shape)
    xy = np.stack([columns.ravel(), rows.ravel(), np.ones(depth.size)])  # (3, H * W)
    if to_photo is not None:
        xy = to_photo @ xy
        xy = xy / xy[2]
    return np.column_stack([xy[0], xy[1], depth.ravel()])


def true_depth_path(image_path: str | Path) -> Path:
    """Where an image's true depth map lies, if it has one: NAME.depth.npy beside NAME.png, (H, W) float32, 0 where
    unknown."""
    return Path(image_path).with_suffix(".depth.npy")


def depth_errors(samples: list[np.ndarray], paths: Sequence[str]) -> dict[str, float]:
    """`metrics.depth_metrics` of a sequence's estimated depths against the true ones, pooled over its images
    with one median scale (AbsRel, and the share within 1.25 in %); NaN for both when an image has no true depth
    map (`true_depth_path`) or no sample lands on a known true depth.

    Args:
        samples: per image (M, 3) [x, y, depth], `SequenceEstimate.depth_samples`; each is compared with the
            true depth at the nearest pixel (samples outside the image are left out).
    """
    if not all(true_depth_path(path).is_file() for path in paths):
        return dict.fromkeys(DEPTH_COLUMNS, math.nan)
    estimated, true = [], []
    for rows, path in zip(samples, paths, strict=True):
        truth = np.load(true_depth_path(path))  # (H, W), 0 where unknown
        x, y = np.rint(rows[:, 0]).astype(np.int64), np.rint(rows[:, 1]).astype(np.int64)
        inside = (x >= 0) & (x < truth.shape[1]) & (y >= 0) & (y < truth.shape[0])
        estimated.append(rows[inside, 2])
        true.append(truth[y[inside], x[inside]].astype(np.float64))
    scores = depth_metrics(np.concatenate(estimated), np.concatenate(true))
    return {"depth_absrel": scores["abs_rel"], "depth_d1": 100 * scores["delta_1.25"]}


def _pooled(records: Sequence[dict]) -> dict[str, float]:
    rot = np.concatenate([np.asarray(r["rot_errs"], dtype=np.float64) for r in records]) if records else np.zeros(0)
    trans = np.concatenate([np.asarray(r["trans_errs"], dtype=np.float64) for r in records]) if records else rot
    finite = np.where(np.isnan(rot), np.inf, rot)
    return {
        "sequences": len(records),
        "lost": int(sum(r["lost"] for r in records)),
        "rra@15": 100 * accuracy_at(rot, 15),
        "rta@15": 100 * accuracy_at(trans, 15),
        "maa@30": 100 * mean_average_accuracy(rot, trans, 30),
        "rot_med": float(np.median(finite)) if len(finite) else math.nan,
        **{key: _mean_of_known([r[key] for r in records]) for key in DEPTH_COLUMNS},
        "seconds": float(np.mean([r["seconds"] for r in records])) if records else math.nan,
    }


def _mean_of_known(values: list[float]) -> float:
    """The mean of the values that are not NaN (sequences without true depths give NaN); NaN if none is."""
    known = [value for value in values if not math.isnan(value)]
    return float(np.mean(known)) if known else math.nan


def evaluate_sequences(
    benchmark: str,
    methods: Mapping[str, SequenceMethod],
    sequences: Iterable[tuple[str, str, list[str], np.ndarray]],
    verbose: bool = True,
) -> EvalResult:
    """Every method on the same sequences.

    Args:
        benchmark: the name in the report.
        methods: name -> sequence method.
        sequences: (sequence name, group such as the category, N image paths, (N, 4, 4) ground-truth
            cam2world in OpenCV axes).
        verbose: a progress bar over sequences.
    Returns:
        EvalResult: a record per (method, sequence) with its pair errors (a method raising RuntimeError or
        ValueError on a sequence loses all its cameras there, the message kept in the record's "error"), a
        row per (method, group) pooling its pairs, and an "all" row averaging the group rows (counts summed).
    """
    if not methods:
        raise ValueError(f"{benchmark}: no method to evaluate; pass e.g. {{'colmap': ColmapSequences()}}")
    records = []
    for name, group, paths, cam2world_gt in tqdm(list(sequences), desc=benchmark, unit="seq", disable=not verbose):
        for method_name, method in methods.items():
            start = time.perf_counter()
            error = None
            depths = dict.fromkeys(DEPTH_COLUMNS, math.nan)
            try:
                estimate = method(paths)
                if isinstance(estimate, SequenceEstimate):
                    depths = depth_errors(estimate.depth_samples, paths)
                    estimate = estimate.poses
                estimate = np.asarray(estimate, dtype=np.float64)
            except (RuntimeError, ValueError) as err:
                # One sequence that breaks a method is that method's failure on it, not the end of the run.
                error = f"{type(err).__name__}: {err}"
                warnings.warn(f"{benchmark}: {method_name} failed on {name} ({error}); counted as lost", stacklevel=2)
                estimate = np.full((len(paths), 4, 4), np.nan)
            seconds = time.perf_counter() - start
            rot, trans = pairwise_pose_errors(estimate, cam2world_gt)
            records.append({
                "method": method_name, "item": name, "group": group, "images": len(paths),
                "lost": int(np.isnan(estimate).any(axis=(1, 2)).sum()),
                "rot_med": float(np.median(np.where(np.isnan(rot), np.inf, rot))), **depths,
                "rot_errs": rot.tolist(), "trans_errs": trans.tolist(), "seconds": seconds, "error": error,
            })
    groups = list(dict.fromkeys(r["group"] for r in records))
    summary = []
    for method_name in methods:
        rows = [
            {"method": method_name, "group": group,
             **_pooled([r for r in records if r["method"] == method_name and r["group"] == group])}
            for group in groups
        ]
        mean = {
            key: _mean_of_known([row[key] for row in rows]) if key in DEPTH_COLUMNS
            else float(np.mean([row[key] for row in rows])) if rows else math.nan
            for key in SEQUENCE_COLUMNS
        }  # fmt: skip
        mean.update(sequences=sum(row["sequences"] for row in rows), lost=sum(row["lost"] for row in rows))
        summary += rows + [{"method": method_name, "group": "all", **mean}]
    return EvalResult(benchmark, {"methods": list(methods)}, records, summary, SEQUENCE_COLUMNS, SEQUENCE_PLOTS)


def choose_frames(num_frames: int, count: int, seed: int, name: str) -> list[int]:
    """`count` distinct frame positions of a sequence, sorted, drawn with a generator seeded by (seed, name),
    so a sequence gets the same frames whatever other sequences are evaluated."""
    if num_frames < count:
        raise ValueError(f"{name}: {num_frames} frames, fewer than the {count} to sample; lower the frame count")
    generator = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return sorted(int(k) for k in generator.choice(num_frames, size=count, replace=False))
