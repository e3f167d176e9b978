"""Global alignment benchmark: simulated pairwise predictions of a synthetic scene with ground truth.

For each N: N cameras around a furnished room (pointmap.data.synthetic.room_capture; `--scene smooth`
uses smooth random depth maps on a circle of cameras instead, much faster to make on a CPU), the edges
of a scene graph, and simulated predictions per edge (unknown scale per edge, 1 % depth noise, a slow
smooth warp, 3 % of pixels with a wrong depth along the right ray and low confidence). Everything is
prepared before the clock starts; the predictions wait on the CPU (float16 for large N), as
infer_pairs leaves them. Then `global_align` is timed and scored:

    python benchmarks/align.py --device cuda --n 10 20 40 100 200
    python benchmarks/align.py --device cpu --n 10 --scene smooth

Prints per N: wall time, CPU time of this process (the load-independent figure on a shared CPU), peak
memory (CUDA: max_memory_allocated; CPU: process peak RSS, predictions included), median / max relative
rotation error and median / max translation-direction error over all camera pairs, RRA@5 and RTA@5
(fraction of pairs under 5 degrees), focal error and depth error (median relative, after one global scale).
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time

import torch

from pointmap.align import AlignConfig, global_align
from pointmap.align.simulate import PredictionNoise, circle_cameras, simulate_predictions, smooth_depths
from pointmap.geometry.cameras import intrinsics_from_focal
from pointmap.pairs import make_pairs

NOISE = PredictionNoise(scale_spread=0.5, depth_noise=0.01, warp=0.01, outliers=0.03)


def default_graph(num_images: int) -> str:
    """Complete up to 40 images (the official demo's choice), a sparse log window beyond."""
    return "complete" if num_images <= 40 else "logwin-5"


def make_scene(kind: str, num_images: int, height: int, width: int, seed: int, device: torch.device):
    """Ground truth: cam2world (N, 4, 4), K (N, 3, 3), depths (N, H, W), on `device`."""
    if kind == "room":
        from pointmap.data.synthetic.capture import room_capture

        views = room_capture(seed, num_images, height, width, device=device)
        poses = torch.stack([v.cam2world for v in views])
        intrinsics = torch.stack([v.intrinsics for v in views])
        depths = torch.stack([torch.where(v.valid, v.depth, 0) for v in views])
        return poses, intrinsics, depths
    gen = torch.Generator().manual_seed(seed)
    poses = circle_cameras(num_images, generator=gen)
    focal = width * (0.75 + 0.1 * torch.rand(num_images, generator=gen))
    intrinsics = intrinsics_from_focal(focal, height, width)
    depths = smooth_depths(num_images, height, width, generator=gen)
    return poses.to(device), intrinsics.to(device), depths.to(device)


def pair_angles_deg(est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative rotation and translation-direction errors (degrees) over all pairs i < j."""
    est, ref = est.double().cpu(), ref.double().cpu()
    i, j = torch.triu_indices(len(est), len(est), 1)

    def relative(poses):
        rot = poses[:, :3, :3]
        rel_rot = rot[i].transpose(1, 2) @ rot[j]
        rel_t = (rot[i].transpose(1, 2) @ (poses[j, :3, 3] - poses[i, :3, 3])[..., None])[..., 0]
        return rel_rot, rel_t

    (rot_e, t_e), (rot_r, t_r) = relative(est), relative(ref)
    # asin of the chordal distance: accurate near 0, where acos of the trace is not.
    chord = (rot_e - rot_r).flatten(1).norm(dim=-1) / (2 * math.sqrt(2))
    rot_err = torch.rad2deg(2 * torch.asin(chord.clamp(max=1)))
    unit_e = t_e / t_e.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    unit_r = t_r / t_r.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    t_err = torch.rad2deg(2 * torch.asin(((unit_e - unit_r).norm(dim=-1) / 2).clamp(max=1)))
    return rot_err, t_err


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(num_images: int, args, device: torch.device) -> dict:
    graph = args.graph or default_graph(num_images)
    edges = make_pairs(num_images, graph)
    started = time.perf_counter()
    poses, intrinsics, depths = make_scene(args.scene, num_images, args.height, args.width, args.seed, device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    values = len(edges) * 2 * args.height * args.width * 4
    storage = torch.float16 if (args.half or values * 4 > args.half_above_gb * 1e9) else torch.float32
    preds = simulate_predictions(poses, intrinsics, depths, edges, NOISE, gen, storage_dtype=storage)
    prepared = time.perf_counter() - started
    config = AlignConfig(
        iterations=args.iterations, subsample=args.subsample, device=str(device), verbose=not args.quiet
    )
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    scene = global_align(preds, config)
    sync(device)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    rot_err, t_err = pair_angles_deg(scene.poses, poses)
    focal = scene.intrinsics[:, 0, 0].cpu().double()
    focal_err = (focal / intrinsics[:, 0, 0].cpu().double() - 1).abs()
    est_depth, ref_depth = torch.stack(scene.depths).cpu().double(), depths.cpu().double()
    valid = ref_depth > 0
    ratio = est_depth[valid] / ref_depth[valid]
    depth_err = (ratio / ratio.median() - 1).abs().median()
    return {
        "N": num_images,
        "graph": graph,
        "edges": len(edges),
        "storage": str(storage).removeprefix("torch."),
        "prep_s": prepared,
        "time_s": seconds,
        "cpu_s": cpu_seconds,
        "peak_gb": peak_memory_gb(device),
        "rot_med": rot_err.median().item(),
        "rot_max": rot_err.max().item(),
        "trans_med": t_err.median().item(),
        "trans_max": t_err.max().item(),
        "RRA@5": (rot_err < 5).double().mean().item(),
        "RTA@5": (t_err < 5).double().mean().item(),
        "focal_err_%": 100 * focal_err.median().item(),
        "depth_err_%": 100 * depth_err.item(),
    }


def warm_up(device: torch.device) -> None:
    """One tiny alignment, so that CUDA start-up and kernel loading stay out of the timings."""
    poses, intrinsics, depths = make_scene("smooth", 3, 32, 48, 0, device)
    gen = torch.Generator(device=device).manual_seed(0)
    preds = simulate_predictions(poses, intrinsics, depths, make_pairs(3), NOISE, gen)
    global_align(preds, AlignConfig(iterations=3, subsample=4, device=str(device), verbose=False))


COLUMNS = (
    ("N", "{:>4}"), ("graph", "{:>10}"), ("edges", "{:>6}"), ("time_s", "{:>7.2f}"), ("cpu_s", "{:>7.1f}"),
    ("peak_gb", "{:>7.2f}"),
    ("rot_med", "{:>7.3f}"), ("rot_max", "{:>7.3f}"), ("trans_med", "{:>9.3f}"), ("trans_max", "{:>9.3f}"),
    ("RRA@5", "{:>6.3f}"), ("RTA@5", "{:>6.3f}"), ("focal_err_%", "{:>11.3f}"), ("depth_err_%", "{:>11.3f}"),
)


def print_table(rows: list[dict]) -> None:
    print(" ".join(f"{name:>{len(fmt.format(rows[0][name]))}}" for name, fmt in COLUMNS))
    for row in rows:
        print(" ".join(fmt.format(row[name]) for name, fmt in COLUMNS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 40, 100, 200], help="numbers of images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--graph", default=None, help="scene graph for every N (default: complete <= 40, logwin-5)")
    parser.add_argument("--scene", choices=("room", "smooth"), default="room")
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=AlignConfig.iterations)
    parser.add_argument("--subsample", type=int, default=AlignConfig.subsample)
    parser.add_argument("--half", action="store_true", help="store predictions as float16 at every N")
    parser.add_argument("--half-above-gb", type=float, default=4.0, help="float16 storage above this float32 size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, scene {args.scene}, "
          f"{args.width}x{args.height}", flush=True)
    warm_up(device)
    rows = []
    for num_images in args.n:
        row = run_one(num_images, args, device)
        rows.append(row)
        print(f"N={num_images}: prepared in {row['prep_s']:.1f} s ({row['storage']} predictions), "
              f"aligned in {row['time_s']:.2f} s", flush=True)
        print_table([row])
    print("\nglobal alignment, summary")
    print_table(rows)


if __name__ == "__main__":
    main()
