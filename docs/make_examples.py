"""Build examples/: six photos of an office from the TUM RGB-D benchmark (CC BY 4.0), with reference cameras.

    python docs/make_examples.py MIRRORS        # MIRRORS/<owner>+<name>/repo, as the `fetch` tool lays them out

The photos are frames of fr3/long_office_household (Sturm et al., IROS 2012) as the SuperGlue repository's
assets keep 17 of them, one a second (`SOURCE`; the repository's code licence does not cover the frames, the
benchmark's CC BY 4.0 does). COLMAP maps all 17 with the benchmark's published calibration held fixed, and
six frames about 20 deg apart (`PICKED`, 108 deg from first to last) are written as office_00.jpg ...
office_05.jpg (640 x 480, JPEG quality 95) with cameras.json: per image `intrinsics` (3 x 3 K, the published
calibration) and `cam2world` (4 x 4, OpenCV axes; COLMAP's poses moved so that office_00 is the identity and
scaled so that office_00 and office_05 lie one unit apart: COLMAP cannot know metres). Each file is written
atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pointmap.data.real.git_sources import find_repository, list_folder, read_file
from pointmap.io_utils import atomic_write_bytes, atomic_write_text

SOURCE = {
    "repository": "magicleap/SuperGluePretrainedNetwork",
    "commit": "ddcf11f42e7e0732a0c4607648f9448ea8d73590",
    "path": "assets/freiburg_sequence",
}
PICKED = (0, 3, 6, 10, 13, 16)  # of the 17 frames in time order
FX, FY, CX, CY = 535.4, 539.2, 320.1, 247.6  # TUM's fr3 colour camera (its frames are stored undistorted)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def colmap_cam2world(image_dir: Path) -> dict[str, np.ndarray]:
    """(4, 4) cam2world per file name of COLMAP's largest model of the folder, PINHOLE K fixed at TUM's."""
    import pycolmap

    with tempfile.TemporaryDirectory() as work:
        database = Path(work) / "database.db"
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        reader.camera_params = f"{FX},{FY},{CX},{CY}"
        pycolmap.extract_features(
            database, image_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
            device=pycolmap.Device.cpu,
        )
        pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu)
        options = pycolmap.IncrementalPipelineOptions()
        options.random_seed = 0
        options.ba_refine_focal_length = False
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        models = pycolmap.incremental_mapping(database, image_dir, Path(work), options=options)
    model = max(models.values(), key=lambda candidate: candidate.num_reg_images())
    poses = {}
    for image in model.images.values():
        world2cam = np.eye(4)
        world2cam[:3] = image.cam_from_world().matrix()
        poses[image.name] = np.linalg.inv(world2cam)
    return poses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mirrors", type=Path, help="folder of git mirrors holding the source repository")
    parser.add_argument("--out", type=Path, default=EXAMPLES)
    args = parser.parse_args()

    repo = find_repository(args.mirrors, SOURCE["repository"])
    frames = sorted(list_folder(repo, SOURCE["commit"], SOURCE["path"]))
    with tempfile.TemporaryDirectory() as originals:
        for name in frames:
            (Path(originals) / name).write_bytes(read_file(repo, SOURCE["commit"], f"{SOURCE['path']}/{name}"))
        poses = colmap_cam2world(Path(originals))
        picked = [frames[index] for index in PICKED]
        missing = [name for name in picked if name not in poses]
        if missing:
            raise SystemExit(f"COLMAP did not register {missing}; nothing written")
        first = np.linalg.inv(poses[picked[0]])
        scale = 1 / np.linalg.norm(poses[picked[-1]][:3, 3] - poses[picked[0]][:3, 3])
        args.out.mkdir(parents=True, exist_ok=True)
        cameras = {}
        for index, frame in enumerate(picked):
            name = f"office_{index:02d}.jpg"
            buffer = io.BytesIO()
            Image.open(Path(originals) / frame).convert("RGB").save(buffer, format="JPEG", quality=95)
            atomic_write_bytes(args.out / name, buffer.getvalue())
            cam2world = first @ poses[frame]
            cam2world[:3, 3] *= scale
            cameras[name] = {
                "intrinsics": [[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]],
                "cam2world": cam2world.round(9).tolist(),
                "source": f"{SOURCE['repository']}@{SOURCE['commit']}:{SOURCE['path']}/{frame}",
            }
            print(f"{args.out / name} <- {frame}")
    atomic_write_text(args.out / "cameras.json", json.dumps(cameras, indent=1) + "\n")


if __name__ == "__main__":
    main()
