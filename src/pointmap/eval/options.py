"""The options of `pointmap eval` and the benchmarks it knows (argparse only, so the CLI starts fast)."""

from __future__ import annotations

import argparse

PAIR_METHODS = ("pointmap", "pointmap-matched", "sift", "colmap", "oracle")
"""Methods of the two-view benchmarks; "pointmap" is `analyze_pair` without feature matches (the network's pose and
focals, as the paper: what the bundled model's synthetic figures measure), "pointmap-matched" its default (pose
and focals from feature matches where the pair has enough), "oracle" returns the ground truth (a check of the
harness). On the synthetic renders, matched on their 224 px images, the matches cost accuracy (chunk 15: 2.94 deg
from the network, 4.05 matched before the bundle adjustment's focal prior became quadratic); on real photos,
matched at up to 640 px, they are what makes the poses (benchmarks/real_pairs.py)."""
SEQUENCE_METHODS = ("pointmap", "pointmap-network", "colmap", "oracle")
"""Methods of the multi-view pose benchmarks; "pointmap-network" is `reconstruct` without feature matches
(`matcher=None`: the network's poses alone, as the paper)."""
DEPTH_METHODS = ("pointmap", "oracle")
"""Methods of the monocular depth benchmarks."""
DEPTH_BENCHMARKS = ("nyuv2", "kitti", "tum", "bonn", "sintel")
POINTS_METHODS = ("pointmap", "oracle")
"""Methods of the point-cloud benchmarks."""
BENCHMARK_METHODS = {
    "synthetic": PAIR_METHODS,
    "scannet1500": PAIR_METHODS,
    "co3d": SEQUENCE_METHODS,
    "realestate10k": SEQUENCE_METHODS,
    "synthetic-rooms": SEQUENCE_METHODS,
    "synthetic-objects": SEQUENCE_METHODS,
    **{name: DEPTH_METHODS for name in DEPTH_BENCHMARKS},
    "dtu": POINTS_METHODS,
    "eth3d": POINTS_METHODS,
}
"""Benchmarks `run_eval` knows, with the methods each can run."""
DEFAULT_METHODS = {
    "synthetic": ("pointmap", "sift", "colmap"),
    "scannet1500": ("pointmap", "pointmap-matched", "sift"),
    "co3d": ("pointmap", "colmap"),
    "realestate10k": ("pointmap", "colmap"),
    "synthetic-rooms": ("pointmap", "colmap"),
    "synthetic-objects": ("pointmap", "colmap"),
    **{name: ("pointmap",) for name in DEPTH_BENCHMARKS},
    "dtu": ("pointmap",),
    "eth3d": ("pointmap",),
}
"""Methods run when none are named: pointmap and the benchmark's classical baselines."""

EPILOG = """benchmarks:
  synthetic       held-out procedural pairs (seeds training never uses): two-view pose and depth per overlap
                  bucket; no --data; --pairs (64), --resolution, --photo-folder, --roll-deg, --hfov, --kinds,
                  --quarter-turns and --flash-share choose the pairs, their textures, cameras, scenes and light
  synthetic-rooms held-out procedural rooms, --frames cameras around each (RRA@15, RTA@15, mAA30, and the dense
                  depths' AbsRel and delta<1.25 with one scale per room); no --data; --max-sequences rooms (8),
                  --resolution render size
  synthetic-objects
                  held-out objects on a table or the ground, --frames cameras all the way round them, 20-40 deg
                  above (object-centric sets; --frames 16 for sets of 12-20 photos), every second scene's objects
                  textureless (group objects-plain); options as synthetic-rooms
  scannet1500     ScanNet-1500 wide-baseline indoor pairs (AUC@5/10/20); --data ROOT holding LoFTR's test.npz and
                  intrinsics.npz next to sceneXXXX_XX/{color,depth,pose}/
  co3d            CO3Dv2 multi-view pose (10 frames per test sequence, RRA@15, RTA@15, mAA30); --data ROOT
                  holding CATEGORY/frame_annotations.jgz, sequence_annotations.jgz, set_lists/, SEQUENCE/images/
  realestate10k   RealEstate10K multi-view pose (10 frames per test clip); --data ROOT holding test/CLIP.txt
                  camera files and frames/CLIP/TIMESTAMP.png
  nyuv2           monocular depth (AbsRel, delta<1.25, median scaled): ROOT/rgb/NAME.png + ROOT/depth/NAME.png (mm)
  kitti           monocular depth: ROOT/image/NAME.png + ROOT/depth/NAME.png (KITTI annotated depth, m * 256)
  tum, bonn       monocular depth: ROOT/SEQUENCE/{rgb.txt, depth.txt, rgb/, depth/} (TUM RGB-D format)
  sintel          monocular depth: ROOT/training/final/SCENE/*.png + ROOT/training/depth/SCENE/*.dpt
  dtu             point clouds (accuracy, completeness, Chamfer in mm; aligned on camera centres): ROOT = DTU's
                  "MVS Data" with Rectified/, Calibration/cal18/, Points/stl/, ObsMask/; --frames views per scan
  eth3d           point clouds (accuracy, completeness in m, F1 at 2 cm): ROOT/SCENE/{images/,
                  dslr_calibration_undistorted/images.txt, dslr_scan_eval/}; --frames views per scene

outputs in OUT (default eval-BENCHMARK/): results.json (every item and the table), results.md (the table),
*.png (cumulative error distributions, needs matplotlib)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pointmap eval` (shared by `pointmap.cli` and `main`)."""
    parser.add_argument("benchmark", choices=tuple(BENCHMARK_METHODS), help="which benchmark")
    parser.add_argument("--data", default=None, help="the benchmark's folder (not needed for synthetic)")
    parser.add_argument("-o", "--out", default=None, help="output folder (default: eval-BENCHMARK)")
    parser.add_argument("--model", default=None, help="checkpoint file, hub folder or hub id (default: bundled)")
    parser.add_argument("--size", type=int, choices=(224, 512), default=None,
                        help="network image size (default: the model's); synthetic renders are made at that size, "
                             "or with --resolution too, resized and cropped by its rule as photos are")
    parser.add_argument("--device", default="cpu",
                        help="torch device for the network and the synthetic renders (default: cpu)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated: pointmap, colmap, oracle; on pairs sift and pointmap-matched (pointmap "
                        "is the network's two-view pose, pointmap-matched analyze_pair's default, from feature "
                        "matches); on multi-view pointmap-network (pointmap is reconstruct's default, "
                        "pointmap-network reconstruct without feature matches); default pointmap and the "
                        "benchmark's classical baselines")
    parser.add_argument("--pairs", type=int, default=None,
                        help="number of pairs (synthetic: 64 held-out pairs; scannet1500: the first N, default all)")
    parser.add_argument("--resolution", default=None, metavar="HxW",
                        help="synthetic render size, multiples of 16 (default: 224x224, 384x512 for size 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split or the frame sampling (0)")
    parser.add_argument("--photo-folder", default=None, metavar="DIR",
                        help="synthetic: texture some walls, fabrics and facades with these photos (e.g. photos never "
                        "trained on, to see what unfamiliar real textures cost); default procedural textures only")
    parser.add_argument("--photo-share", type=float, default=None,
                        help="synthetic, with --photo-folder: share of those surfaces that take a photo (default: "
                        "the training data's, 0.25)")
    parser.add_argument("--roll-deg", type=float, default=None, metavar="DEG",
                        help="synthetic: standard deviation of each held-out camera's roll about its optical axis, "
                        "in degrees, 0 or more (default: the training data's, 3)")
    parser.add_argument("--hfov", default=None, metavar="LOW,HIGH",
                        help="synthetic: range of the held-out cameras' horizontal fields of view, in degrees, "
                        "0 < LOW <= HIGH < 180 (default: the training data's, 45,80); e.g. 15,45 as zoomed internet "
                        "photos have over the 224 crop")
    parser.add_argument("--kinds", default=None,
                        help="synthetic: comma-separated kinds of the held-out scenes, weighed equally: room, objects, "
                        "street, clutter (close-ups of crowded tables or floors); default room,objects,street "
                        "mixed as in training (0.45, 0.3, 0.25)")
    parser.add_argument("--quarter-turns", type=int, default=None, choices=range(4), metavar="K",
                        help="synthetic: turn both views of every held-out pair K quarters counter-clockwise, cameras "
                        "with them (0-3); 1 or 3 is how portrait photos stored sideways without EXIF orientation "
                        "come in")
    parser.add_argument("--flash-share", type=float, default=None, metavar="SHARE",
                        help="synthetic: share of the held-out pairs photographed with a flash (a light at each "
                        "camera, the scene's own light dimmed; SyntheticConfig.flash_share), 0-1 (default 0); 1 "
                        "measures what flash-lit close-ups cost")
    parser.add_argument("--orbit-m", type=float, default=None, metavar="M",
                        help="synthetic-objects: the cameras' distance from the objects in metres (2.3); real "
                             "object photos are often closer, and closer is harder")
    parser.add_argument("--frames", type=int, default=10, help="multi-view: frames per sequence or DTU scan (10)")
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="multi-view: at most this many sequences (per category on co3d; 8 synthetic rooms)")
    parser.add_argument("--categories", default=None, help="co3d: comma-separated categories (default: all)")
    parser.add_argument("--min-frames", type=int, default=50, help="co3d: skip sequences with fewer frames (50)")
    parser.add_argument("--max-images", type=int, default=None,
                        help="depth: at most this many images, evenly spread (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no printed table")
