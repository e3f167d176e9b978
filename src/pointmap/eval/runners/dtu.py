"""DTU MVS scans in the layout of the official release (SampleSet / MVS Data), for point-cloud accuracy.

Layout (ROOT is the "MVS Data" folder):

    ROOT/Rectified/scan{N}/rect_{view:03d}_3_r5000.png      images, view 1..49, lighting 3
    ROOT/Calibration/cal18/pos_{view:03d}.txt               (3, 4) projection matrix P = K [R | t]
    ROOT/Points/stl/stl{N:03d}_total.ply                    ground-truth points (mm)
    ROOT/ObsMask/ObsMask{N}_10.mat                          ObsMask (voxel grid), BB (2, 3), Res (voxel size)
    ROOT/ObsMask/Plane{N}.mat                               P (4,): ground plane, kept side [x, 1] . P > 0

Protocol (DTU's MATLAB evaluation as its Python ports run it): prediction thinned to 0.2 mm, only points
in observed voxels scored for accuracy, ground truth above the plane for completeness, distances over 20 mm
left out. Without the ObsMask files every point counts. The 22 scans of the usual test split by default.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from pointmap.eval.points import PointsScan, everywhere

TEST_SCANS = (1, 4, 9, 10, 11, 12, 13, 15, 23, 24, 29, 32, 33, 34, 48, 49, 62, 75, 77, 110, 114, 118)
"""The DTU evaluation scans of the MVSNet split."""
NUM_VIEWS = 49


@dataclass(frozen=True)
class DtuEvalConfig:
    """Which DTU scans and views are reconstructed."""

    views: int = 10
    """Views per scan, evenly spread over the 49 (all 49 is the full MVS setting)."""
    scans: tuple[int, ...] = TEST_SCANS
    """Scan numbers; those missing on disk are skipped."""


def camera_from_projection(P: np.ndarray) -> np.ndarray:
    """(4, 4) OpenCV cam2world of a (3, 4) projection matrix K [R | t]."""
    _, rotation, centre = cv2.decomposeProjectionMatrix(np.asarray(P, dtype=np.float64))[:3]
    cam2world = np.eye(4)
    cam2world[:3, :3] = rotation.T
    cam2world[:3, 3] = centre[:3, 0] / centre[3, 0]
    return cam2world


def read_ply_points(path: Path) -> np.ndarray:
    """(Q, 3) float64 vertices of a PLY file."""
    try:
        import trimesh
    except ImportError as err:
        raise ImportError("reading DTU's ground-truth PLY needs trimesh; pip install trimesh") from err
    return np.asarray(trimesh.load(path, process=False).vertices, dtype=np.float64)


def observed(points: np.ndarray, mask: np.ndarray, bounds: np.ndarray, resolution: float) -> np.ndarray:
    """(P,) True for points in an observed voxel of DTU's ObsMask (grid from bounds[0], cell `resolution`)."""
    cells = np.floor((points - bounds[0]) / resolution).astype(np.int64)
    inside = ((cells >= 0) & (cells < np.array(mask.shape))).all(1)
    result = np.zeros(len(points), dtype=bool)
    result[inside] = mask[tuple(cells[inside].T)]
    return result


def _above(points: np.ndarray, plane: np.ndarray) -> np.ndarray:
    return points @ plane[:3] + plane[3] > 0


def dtu_scans(root: str | Path, config: DtuEvalConfig | None = None) -> list[PointsScan]:
    """The scans of `config` found under `root`, with lazily read ground truth."""
    config = config or DtuEvalConfig()
    root = Path(root)
    if not (root / "Rectified").is_dir():
        raise FileNotFoundError(f"{root / 'Rectified'}: missing; pass DTU's 'MVS Data' folder as --data")
    views = sorted({int(v) for v in np.round(np.linspace(1, NUM_VIEWS, config.views))})
    scans = []
    for number in config.scans:
        images = [root / "Rectified" / f"scan{number}" / f"rect_{view:03d}_3_r5000.png" for view in views]
        stl = root / "Points" / "stl" / f"stl{number:03d}_total.ply"
        if not all(path.is_file() for path in images) or not stl.is_file():
            continue
        poses = np.stack([
            camera_from_projection(np.loadtxt(root / "Calibration" / "cal18" / f"pos_{view:03d}.txt").reshape(3, 4))
            for view in views
        ])
        in_mask, above_ground = everywhere, everywhere
        mask_file = root / "ObsMask" / f"ObsMask{number}_10.mat"
        if mask_file.is_file():
            data = scipy.io.loadmat(mask_file)
            in_mask = functools.partial(observed, mask=data["ObsMask"].astype(bool), bounds=data["BB"].astype(float),
                                        resolution=float(np.asarray(data["Res"]).reshape(-1)[0]))
        plane_file = root / "ObsMask" / f"Plane{number}.mat"
        if plane_file.is_file():
            above_ground = functools.partial(_above, plane=scipy.io.loadmat(plane_file)["P"].astype(float).reshape(4))
        scans.append(PointsScan(f"scan{number}", [str(p) for p in images], poses,
                                functools.partial(read_ply_points, stl), in_mask, above_ground))
    if not scans:
        raise ValueError(
            f"{root}: none of scans {list(config.scans)} has its {len(views)} rectified images and its stl PLY; "
            "check the layout"
        )
    return scans
