"""The builder against exact ground truth: a textured synthetic room is rendered, built and compared.

`python -m pointmap.data.real.synthetic_check --size 480x640 --device cuda` prints the pose and depth
errors and the time of each stage, on any machine (the test runs it at 240 x 320 on CPU).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from pointmap.data.formats.generic import GenericPairDataset
from pointmap.data.real.build import build_real
from pointmap.data.real.config import BuildConfig, SfmConfig, StereoConfig
from pointmap.geometry.procrustes import weighted_procrustes


def textured_room(seed: int, count: int, height: int, width: int, device=None) -> tuple[Tensor, ...]:
    """A synthetic room whose surfaces all carry high-contrast dead-leaves texture (SIFT needs texture on
    small images), seen by `count` cameras on an arc looking into a corner.

    Returns:
        rgb (N, 3, H, W) in [0, 1], depth (N, H, W), K (N, 3, 3), cam2world (N, 4, 4), on `device`.
    """
    from pointmap.data.synthetic import intrinsics_from_fov, look_at, make_scene, render_views
    from pointmap.data.synthetic.textures import PATTERNS

    scene = make_scene("room", seed, device=device)
    materials = scene.materials
    generator = torch.Generator().manual_seed(seed)
    materials.pattern[:] = PATTERNS.index("dead_leaves")
    materials.scale[:] = 0.3
    materials.gloss[:] = 0
    materials.grime[:] = 0
    materials.color_a[:] = torch.rand(materials.color_a.shape, generator=generator).to(materials.color_a.device)
    materials.color_b[:] = 1 - materials.color_a
    angle = torch.linspace(0, 0.6 * math.pi, count)
    eyes = torch.stack([1.2 * torch.cos(angle), 1.2 * torch.sin(angle), torch.full((count,), 1.5)], -1)
    cam2world = look_at(eyes, torch.tensor([[-0.5, -0.5, 0.9]]).expand(count, 3), torch.zeros(count))
    K = intrinsics_from_fov(torch.full((count,), 65.0), height, width)
    cam2world, K = cam2world.to(scene.device), K.to(scene.device)
    rgb, depth = render_views(scene, K, cam2world, height, width, shadows=False)
    return rgb, depth, K, cam2world


def write_photos(rgb: Tensor, folder: Path) -> None:
    """Save (N, 3, H, W) [0, 1] images as folder/000.png, 001.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(rgb):
        pixels = (image.permute(1, 2, 0) * 255).round().byte().cpu().numpy()
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")


def check_config(device: str | None = None, num_depths: int = 64) -> BuildConfig:
    """The builder's options for rendered photos: no lens distortion (SIMPLE_PINHOLE, so that the
    undistorted pixels are the rendered ones), COLMAP's inlier thresholds lowered for small images."""
    return BuildConfig(
        image_format="png",
        device=device,
        verbose=False,
        sfm=SfmConfig(camera_model="SIMPLE_PINHOLE", init_min_inliers=30, abs_pose_min_inliers=15),
        stereo=StereoConfig(num_depths=num_depths, sparse_fallback=False),
    )


@dataclass(frozen=True)
class TruthMetrics:
    """Errors of a built scene against the renderer's ground truth."""

    rotation_deg_max: float
    """Largest camera rotation error after Umeyama alignment of the camera centres (degrees)."""
    relative_rotation_deg_max: float
    """Largest error of the relative rotation of any two cameras (degrees; no alignment needed)."""
    depth_median_error: float
    """Median relative depth error of the kept depths, after one scale for the scene."""
    depth_within_5pct: float
    """Share of kept depths within 5 % of the truth."""
    valid_share: float
    """Share of pixels (with ground truth) that kept a depth."""
    scale_disagreement: float
    """Relative difference of the depth scale and the camera-centre similarity's scale."""


def _angle_deg(rotation: Tensor) -> Tensor:
    cos = ((rotation.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cos))


def truth_metrics(dataset_dir: Path, scene: str, depth_gt: Tensor, cam2world_gt: Tensor) -> TruthMetrics:
    """Compare a built scene (frames named 000, 001, ... as write_photos names them) with the truth.

    Args:
        depth_gt: (N, H, W) rendered z-depth; cam2world_gt: (N, 4, 4) rendered poses.
    """
    dataset = GenericPairDataset(dataset_dir)
    frames = sorted(dataset.frames[scene])
    index = torch.tensor([int(name) for name in frames])
    views = [dataset.view(scene, name) for name in frames]
    cam2world = torch.stack([v.cam2world for v in views]).double()
    truth = cam2world_gt[index].double().cpu()
    scale, rotation, _ = weighted_procrustes(cam2world[None, :, :3, 3], truth[None, :, :3, 3])
    errors = _angle_deg((rotation[0] @ cam2world[:, :3, :3]).transpose(1, 2) @ truth[:, :3, :3])
    relative = cam2world[:, None, :3, :3].transpose(-1, -2) @ cam2world[None, :, :3, :3]
    relative_gt = truth[:, None, :3, :3].transpose(-1, -2) @ truth[None, :, :3, :3]
    # SIMPLE_PINHOLE undistortion is the identity, so pixels correspond; one depth scale for the scene.
    depth_gt = depth_gt[index].float().cpu()
    valid = torch.stack([v.valid for v in views]) & (depth_gt > 0)
    depth = torch.stack([v.depth for v in views])
    depth_scale = (depth_gt[valid] / depth[valid]).median()
    error = (depth[valid] * depth_scale - depth_gt[valid]).abs() / depth_gt[valid]
    return TruthMetrics(
        rotation_deg_max=float(errors.max()),
        relative_rotation_deg_max=float(_angle_deg(relative.transpose(-1, -2) @ relative_gt).max()),
        depth_median_error=float(error.median()),
        depth_within_5pct=float((error < 0.05).float().mean()),
        valid_share=float(valid.sum() / (depth_gt > 0).sum()),
        scale_disagreement=abs(float(depth_scale) / float(scale[0]) - 1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a rendered room and compare with its ground truth.")
    parser.add_argument("--size", default="240x320", help="HxW of the renders")
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--num-depths", type=int, default=64)
    parser.add_argument("--device", default=None, help="render and stereo device (default: cuda when present)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    start = time.perf_counter()
    rgb, depth_gt, _, cam2world_gt = textured_room(args.seed, args.views, height, width, device)
    render_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="pointmap-check-") as work:
        write_photos(rgb, Path(work) / "room")
        (result,) = build_real([Path(work) / "room"], Path(work) / "out", check_config(str(device), args.num_depths))
        if result.status != "accepted":
            print(f"room: {result.status}: {result.reason}")
            return 1
        metrics = truth_metrics(Path(work) / "out", "room", depth_gt, cam2world_gt)
    quality = result.quality
    print(
        f"{args.views} views {height}x{width} on {device}: render {render_seconds:.1f} s, "
        f"SfM {quality.sfm_seconds:.1f} s, stereo + filter {quality.stereo_seconds:.1f} s, "
        f"pairs {quality.pairs_seconds:.1f} s, registered {quality.num_registered}/{quality.num_input}"
    )
    for name, value in asdict(metrics).items():
        print(f"  {name}: {value:.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
