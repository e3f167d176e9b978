"""Multi-view pose evaluation: each method poses every sequence; RRA@15, RTA@15 and mAA(30) over all pairs.

Following DUSt3R's Tab. 2 (after PoseDiffusion): the errors of every image pair i < j of a category's
sequences are pooled into that category's row, and the "all" row is the mean of the category rows.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import PIL.Image
import torch
from tqdm import tqdm

from pointmap.eval.metrics import accuracy_at, mean_average_accuracy, pairwise_pose_errors
from pointmap.eval.report import EvalResult, Plot

SequenceMethod = Callable[[Sequence[str]], np.ndarray]
"""A multi-view method: image paths of one sequence -> (N, 4, 4) cam2world, NaN rows for lost cameras."""

SEQUENCE_COLUMNS = ("sequences", "lost", "rra@15", "rta@15", "maa@30", "rot_med", "seconds")
"""Summary keys shown in the table of a multi-view pose benchmark, in order."""
SEQUENCE_PLOTS = (Plot("rot_med", "median relative rotation error of a sequence (deg)", 30.0),)


class PointmapSequences:
    """pointmap's reconstruct pipeline (complete graph, global alignment), uncalibrated; with its default
    feature matches, or the network's poses alone with `matcher=None`."""

    def __init__(self, model: torch.nn.Module, size: int | None = None, device: str | torch.device = "cpu",
                 matcher: str | None = "xfeat"):
        self.model, self.size, self.device, self.matcher = model, size, device, matcher

    def __call__(self, paths: Sequence[str]) -> np.ndarray:
        from pointmap.pipeline import reconstruct

        scene = reconstruct(
            list(paths), model=self.model, size=self.size, device=self.device, matcher=self.matcher, verbose=False
        )
        return scene.photo_poses().numpy()


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

    def __call__(self, paths: Sequence[str]) -> np.ndarray:
        world_change = np.eye(4)
        world_change[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        world_change[:3, 3] = [1.0, 2.0, 3.0]
        poses = world_change @ np.stack([self.poses[path] for path in paths])
        poses[:, :3, 3] *= 0.5  # another world frame and scale: the metrics must not see either
        return poses


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
        "seconds": float(np.mean([r["seconds"] for r in records])) if records else math.nan,
    }


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
            try:
                estimate = np.asarray(method(paths), dtype=np.float64)
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
                "rot_med": float(np.median(np.where(np.isnan(rot), np.inf, rot))),
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
        mean = {key: float(np.mean([row[key] for row in rows])) if rows else math.nan for key in SEQUENCE_COLUMNS}
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
