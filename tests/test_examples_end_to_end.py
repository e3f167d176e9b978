"""`pointmap reconstruct examples/ -o OUT` with the bundled model: every output, read back by its own reader."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pointmap import export
from pointmap.cli import main
from pointmap.export.ply import read_ply

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = [f"office_{index:02d}.jpg" for index in range(6)]
MIN_CONF = 1.5


@pytest.fixture(scope="module")
def ground_truth_K() -> np.ndarray:
    """The examples' shared (3, 3) K in original pixels (one camera took all six photos)."""
    cameras = json.loads((EXAMPLES / "cameras.json").read_text())
    Ks = np.array([cameras[name]["intrinsics"] for name in NAMES])
    np.testing.assert_allclose(Ks, Ks[:1].repeat(6, axis=0))
    return Ks[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory, ground_truth_K) -> tuple[Path, list[np.ndarray]]:
    """One run of the CLI on the six examples with their known K (30 alignment sweeps keep it short).

    Returns the output folder and the Scene's N (H, W) masks, caught on their way to `save_scene`.
    """
    folder = tmp_path_factory.mktemp("examples")
    np.savetxt(folder / "K.txt", ground_truth_K)
    out = folder / "out"
    args = ["reconstruct", str(EXAMPLES), "-o", str(out), "--intrinsics", str(folder / "K.txt")]
    masks: list[np.ndarray] = []
    save_scene = export.save_scene

    def save_and_keep_masks(scene, *save_args, **save_options):
        masks.extend(mask.cpu().numpy() for mask in scene.masks)
        return save_scene(scene, *save_args, **save_options)

    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
        patch.setattr(export, "save_scene", save_and_keep_masks, raising=True)
        code = main([*args, "--iterations", "30", "--min-conf", str(MIN_CONF), "--quiet"])
    assert code == 0, stderr.getvalue()
    # The folder's README.md and cameras.json are skipped, and the CLI says so in one line.
    assert "pointmap: warning: " in stderr.getvalue()
    assert "skipping 2 non-image files (README.md, cameras.json)" in stderr.getvalue()
    return out, masks


@pytest.fixture(scope="module")
def result(run) -> Path:
    return run[0]


def test_examples_are_640x480_jpegs():
    for name in NAMES:
        with Image.open(EXAMPLES / name) as image:
            assert image.size == (640, 480) and image.format == "JPEG"


def test_colmap_model_has_original_sizes_and_the_known_intrinsics(result, ground_truth_K):
    import pycolmap

    model = pycolmap.Reconstruction(str(result / "colmap" / "sparse" / "0"))
    assert model.num_images() == 6 and model.num_cameras() == 6
    assert sorted(image.name for image in model.images.values()) == NAMES
    fx, fy, cx, cy = ground_truth_K[0, 0], ground_truth_K[1, 1], ground_truth_K[0, 2], ground_truth_K[1, 2]
    for image in model.images.values():
        camera = model.cameras[image.camera_id]
        assert (camera.width, camera.height) == (640, 480)
        assert camera.model.name == "PINHOLE"
        # The aligner keeps one focal per camera; the 640x480 -> 299x224 resize scales x and y by 2.1405
        # and 2.1429, so fx and fy come back within that 0.1 % of the given K. COLMAP's pixel centres
        # sit at +0.5.
        np.testing.assert_allclose(camera.params[:2], [fx, fy], rtol=1.2e-3)
        np.testing.assert_allclose(camera.params[2:], [cx + 0.5, cy + 0.5], atol=1e-3)
    assert model.num_points3D() > 1000


def test_cameras_json_agrees_with_colmap(result):
    import pycolmap

    model = pycolmap.Reconstruction(str(result / "colmap" / "sparse" / "0"))
    colmap_params = {image.name: model.cameras[image.camera_id].params for image in model.images.values()}
    entries = json.loads((result / "cameras.json").read_text())["images"]
    assert [entry["name"] for entry in entries] == NAMES
    for entry in entries:
        original = entry["original"]
        assert (original["width"], original["height"]) == (640, 480)
        K = np.array(original["K"])
        expected = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
        np.testing.assert_allclose(colmap_params[entry["name"]], expected, rtol=1e-9)
        pose = np.array(entry["cam2world"])
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-5)
        np.testing.assert_array_equal(pose[3], [0, 0, 0, 1])


def test_ply_has_one_vertex_per_kept_point(run):
    result, masks = run
    assert len(masks) == 6
    kept = 0
    for name, mask in zip(NAMES, masks, strict=True):
        stem = Path(name).stem
        depth = np.load(result / "depth" / f"{stem}.npy")
        confidence = np.load(result / "confidence" / f"{stem}.npy")
        assert depth.shape == confidence.shape == mask.shape == (224, 224) and depth.dtype == np.float32
        # A kept point is confident and in front of its camera; the aligner's cleaning drops some more.
        assert not (mask & ~((confidence > MIN_CONF) & (depth > 0))).any()
        kept += int(mask.sum())
    xyz, rgb, confidence = read_ply(result / "points.ply")
    assert len(xyz) == len(rgb) == len(confidence) == kept > 10_000
    assert confidence.min() > MIN_CONF and np.isfinite(xyz).all()
    assert b"element vertex %d\n" % kept in (result / "points.ply").read_bytes()[:300]


def test_glb_opens_in_trimesh(result):
    import trimesh

    scene = trimesh.load(result / "scene.glb")
    clouds = [g for g in scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    frustums = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    assert len(clouds) == 1 and len(clouds[0].vertices) == len(read_ply(result / "points.ply")[0])
    assert len(frustums) == 6


def test_transforms_json_has_six_original_size_frames(result, ground_truth_K):
    transforms = json.loads((result / "transforms.json").read_text())
    frames = transforms["frames"]
    assert len(frames) == 6
    assert sorted(Path(frame["file_path"]).name for frame in frames) == NAMES
    for frame in frames:
        assert (frame["w"], frame["h"]) == (640, 480)
        np.testing.assert_allclose([frame["fl_x"], frame["fl_y"]], np.diag(ground_truth_K)[:2], rtol=1.2e-3)
        assert (result / frame["file_path"]).resolve() == (EXAMPLES / Path(frame["file_path"]).name).resolve()
    assert (result / transforms["ply_file_path"]).is_file()


def test_depth_pngs_decode_to_the_npy_depths(result):
    entries = {entry["name"]: entry for entry in json.loads((result / "cameras.json").read_text())["images"]}
    for name in NAMES:
        entry = entries[name]
        with Image.open(result / entry["depth_png"]) as png:
            quantized = np.asarray(png)
        assert quantized.dtype == np.uint16 and quantized.max() == 65535
        depth = np.load(result / entry["depth"])
        decoded = quantized.astype(np.float64) * entry["depth_png_scale"]
        np.testing.assert_allclose(decoded, depth, atol=entry["depth_png_scale"] / 2 + 1e-6)
        assert np.load(result / entry["confidence"]).min() >= 1.0


# Bad and unusual inputs, made from the examples, through the CLI with a tiny random network (fast).


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    from pointmap.model.weights import save_model
    from test_pipeline import tiny_model

    folder = tmp_path_factory.mktemp("tiny_model")
    save_model(tiny_model(), folder)
    return folder


def _reconstruct(inputs: list[Path], out: Path, model: Path, *options: str) -> tuple[int, str]:
    """Exit code and stderr of `pointmap reconstruct INPUTS -o OUT --model MODEL --quiet OPTIONS`."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["reconstruct", *map(str, inputs), "-o", str(out), "--model", str(model), "--quiet", *options])
    return code, stderr.getvalue()


def _sizes(out: Path) -> dict[str, tuple[int, int]]:
    """(width, height) per image name as cameras.json, COLMAP and transforms.json say; they must agree."""
    import pycolmap

    from_json = {e["name"]: (e["original"]["width"], e["original"]["height"])
                 for e in json.loads((out / "cameras.json").read_text())["images"]}  # fmt: skip
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    from_colmap = {}
    for image in model.images.values():
        camera = model.cameras[image.camera_id]
        from_colmap[image.name] = (camera.width, camera.height)
        assert camera.params[2] == pytest.approx(camera.width / 2, abs=1.5)
        assert camera.params[3] == pytest.approx(camera.height / 2, abs=1.5)
    frames = json.loads((out / "transforms.json").read_text())["frames"]
    from_nerfstudio = {Path(frame["file_path"]).name: (frame["w"], frame["h"]) for frame in frames}
    assert from_json == from_colmap == from_nerfstudio
    return from_json


def test_one_image_falls_back_to_monocular_depth_and_says_so(tmp_path, tiny_model_dir):
    code, stderr = _reconstruct([EXAMPLES / "office_00.jpg"], tmp_path / "out", tiny_model_dir)
    assert code == 0, stderr
    assert "pointmap: warning: " in stderr and "single image" in stderr and "monocular depth and focal" in stderr
    assert _sizes(tmp_path / "out") == {"office_00.jpg": (640, 480)}
    assert np.load(tmp_path / "out" / "depth" / "office_00.npy").shape == (224, 224)


def test_output_under_a_regular_file_is_refused_before_any_work(tmp_path, tiny_model_dir):
    (tmp_path / "file").write_text("mine")
    code, stderr = _reconstruct([EXAMPLES], tmp_path / "file" / "out", tiny_model_dir)
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("pointmap: error:")]
    assert len(errors) == 1 and "file" in errors[0] and "Traceback" not in stderr
    assert (tmp_path / "file").read_text() == "mine" and sorted(tmp_path.iterdir()) == [tmp_path / "file"]


def test_unreadable_image_among_good_ones_is_skipped_with_a_warning(tmp_path, tiny_model_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in NAMES[:2]:
        shutil.copy(EXAMPLES / name, photos / name)
    (photos / "broken.jpg").write_text("not a JPEG")
    (photos / "notes.txt").write_text("taken at noon")
    code, stderr = _reconstruct([photos], tmp_path / "out", tiny_model_dir, "--iterations", "5")
    assert code == 0, stderr
    assert "notes.txt" in stderr and "broken.jpg" in stderr and "pointmap: error" not in stderr
    assert set(_sizes(tmp_path / "out")) == set(NAMES[:2])


def test_only_unreadable_images_is_an_error_before_the_output_exists(tmp_path, tiny_model_dir):
    (tmp_path / "broken.jpg").write_text("not a JPEG")
    code, stderr = _reconstruct([tmp_path / "broken.jpg"], tmp_path / "out", tiny_model_dir)
    assert code == 2 and "broken.jpg can be read as an image" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", [224, 512])
def test_mixed_sizes_and_orientations_keep_each_original_size(tmp_path, tiny_model_dir, size):
    photos = tmp_path / "photos"
    photos.mkdir()
    with Image.open(EXAMPLES / "office_00.jpg") as image:
        image.save(photos / "a_landscape.jpg")  # 640 x 480
    with Image.open(EXAMPLES / "office_01.jpg") as image:
        image.transpose(Image.Transpose.ROTATE_90).save(photos / "b_portrait.png")  # 480 x 640
    with Image.open(EXAMPLES / "office_02.jpg") as image:
        image.resize((400, 300)).save(photos / "c_small.jpg")  # 400 x 300
        exif = Image.Exif()
        exif[0x0112] = 6  # EXIF orientation: stored 640 x 480, shown rotated 90 degrees, 480 x 640
        image.save(photos / "d_exif_rotated.jpg", exif=exif)
    code, stderr = _reconstruct([photos], tmp_path / "out", tiny_model_dir, "--iterations", "5", "--size", str(size))
    assert code == 0, stderr
    assert _sizes(tmp_path / "out") == {
        "a_landscape.jpg": (640, 480),
        "b_portrait.png": (480, 640),
        "c_small.jpg": (400, 300),
        "d_exif_rotated.jpg": (480, 640),
    }
