"""ETH3D high-resolution multi-view scenes (training set, undistorted DSLR images) for point-cloud accuracy.

Layout (ROOT holds one folder per scene, as the "multi_view_training_dslr_undistorted" and
"multi_view_training_dslr_scan_eval" archives unpack):

    ROOT/{scene}/images/dslr_images_undistorted/DSC_NNNN.JPG
    ROOT/{scene}/dslr_calibration_undistorted/images.txt     COLMAP text: IMAGE_ID QW QX QY QZ TX TY TZ
                                                             CAMERA_ID NAME (world-to-camera), then a 2D line
    ROOT/{scene}/dslr_scan_eval/scan_alignment.mlp           MeshLab project: each scan PLY with its 4 x 4
    ROOT/{scene}/dslr_scan_eval/scan*.ply                    ground-truth laser points (m)

Protocol: `views` images evenly spread over the scene's sorted names; the prediction is aligned on camera
centres (see `eval.points`), thinned to 5 mm, scored by accuracy / completeness (no distance bound) and
by precision / recall / F1 at 2 cm, ETH3D's middle tolerance.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pointmap.eval.points import PointsScan, everywhere
from pointmap.eval.runners.dtu import read_ply_points

TOLERANCE_M = 0.02
DENSITY_M = 0.005


@dataclass(frozen=True)
class Eth3dEvalConfig:
    """Which ETH3D scenes and views are reconstructed."""

    views: int = 10
    """Images per scene, evenly spread over its sorted image names."""
    scenes: tuple[str, ...] | None = None
    """Scene folders to evaluate; None for every folder with a calibration."""


def read_colmap_images(path: Path) -> dict[str, np.ndarray]:
    """Image name -> (4, 4) cam2world from a COLMAP images.txt (every other line is 2D points)."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    poses = {}
    for line in lines[::2]:
        fields = line.split()
        if len(fields) < 10:
            raise ValueError(f"{path}: image line {line[:60]!r} has {len(fields)} fields; expected 10 (COLMAP text)")
        qw, qx, qy, qz, tx, ty, tz = (float(v) for v in fields[1:8])
        world2cam = np.eye(4)
        world2cam[:3, :3] = Rotation.from_quat([qx, qy, qz, qw]).as_matrix()
        world2cam[:3, 3] = [tx, ty, tz]
        poses[" ".join(fields[9:])] = np.linalg.inv(world2cam)
    return poses


def read_scan_points(folder: Path) -> np.ndarray:
    """(Q, 3) ground-truth points of every scan in scan_alignment.mlp, moved by its matrix."""
    project = ElementTree.parse(folder / "scan_alignment.mlp").getroot()
    clouds = []
    for mesh in project.iter("MLMesh"):
        matrix = np.array(mesh.find("MLMatrix44").text.split(), dtype=np.float64).reshape(4, 4)
        points = read_ply_points(folder / mesh.get("filename"))
        clouds.append(points @ matrix[:3, :3].T + matrix[:3, 3])
    if not clouds:
        raise ValueError(f"{folder / 'scan_alignment.mlp'}: lists no scan; use ETH3D's dslr_scan_eval archive")
    return np.concatenate(clouds)


def eth3d_scans(root: str | Path, config: Eth3dEvalConfig | None = None) -> list[PointsScan]:
    """The ETH3D scenes of `config` under `root`, with lazily read ground truth."""
    config = config or Eth3dEvalConfig()
    root = Path(root)
    names = config.scenes or tuple(
        sorted(p.name for p in root.glob("*") if (p / "dslr_calibration_undistorted" / "images.txt").is_file())
    )
    scans = []
    for name in names:
        scene = root / name
        calibration = scene / "dslr_calibration_undistorted" / "images.txt"
        if not calibration.is_file() or not (scene / "dslr_scan_eval" / "scan_alignment.mlp").is_file():
            raise FileNotFoundError(f"{scene}: needs dslr_calibration_undistorted/images.txt and dslr_scan_eval/")
        poses = read_colmap_images(calibration)
        ordered = sorted(poses)
        chosen = sorted({ordered[int(k)] for k in np.round(np.linspace(0, len(ordered) - 1, config.views))})
        paths = [str(scene / "images" / image) for image in chosen]
        load = functools.partial(read_scan_points, scene / "dslr_scan_eval")
        cam2world = np.stack([poses[image] for image in chosen])
        scans.append(PointsScan(name, paths, cam2world, load, everywhere, everywhere))
    if not scans:
        raise ValueError(f"{root}: no scene folder with dslr_calibration_undistorted/images.txt; pass the ETH3D root")
    return scans
