"""benchmarks/real_pictures.py: sets marked `pictures = false` get figures only; the two-view figures against a
reference."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import pointmap
from pointmap.eval.metrics import rotation_angle_deg
from pointmap.two_view import analyze_pair

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("real_pictures", ROOT / "benchmarks" / "real_pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sets_without_pictures_write_figures_only(tiny_model, tmp_path):
    benchmark = _benchmark()
    for name in ("pictured", "figures-only"):
        images = tmp_path / "data" / name / "images"
        images.mkdir(parents=True)
        for photo in ("office_00.jpg", "office_01.jpg"):
            shutil.copy(ROOT / "examples" / photo, images / photo)
    out = tmp_path / "out"
    out.mkdir()
    results = [benchmark.evaluate_set(entry, tiny_model, tmp_path / "data", out, "cpu", verbose=False)
               for entry in ({"name": "pictured"}, {"name": "figures-only", "pictures": False})]
    assert results[0]["pngs"] == ["pictured_behind.png", "pictured_side.png"]
    assert results[1]["pngs"] == [] and results[1]["images"] == 2
    assert sorted(path.name for path in out.iterdir()) == [
        "pictured_behind.png", "pictured_photos.jpg", "pictured_side.png"]
    # The manifest keeps the set whose photos' licences were not checked to figures only.
    sacre_coeur = next(entry for entry in benchmark.load_sets() if entry["name"] == "sacre-coeur")
    assert sacre_coeur["pictures"] is False


def test_two_view_turn_ratio_is_the_pairs_estimated_turn_over_the_reference(tiny_model, tmp_path):
    benchmark = _benchmark()
    images = tmp_path / "data" / "pair" / "images"
    images.mkdir(parents=True)
    for photo in ("office_00.jpg", "office_01.jpg"):
        shutil.copy(ROOT / "examples" / photo, images / photo)
    turned = np.eye(4)
    turned[:3, :3] = Rotation.from_euler("y", 30, degrees=True).as_matrix()
    turned[:3, 3] = [0.5, 0.0, 0.0]
    reference = {"cam2world": {"office_00.jpg": np.eye(4).tolist(), "office_01.jpg": turned.tolist()}}
    (tmp_path / "data" / "pair" / benchmark.REFERENCE_FILE).write_text(json.dumps(reference))
    result = benchmark.evaluate_set({"name": "pair", "pictures": False}, tiny_model, tmp_path / "data", tmp_path,
                                    "cpu", verbose=False)
    views = pointmap.load_images(sorted(images.iterdir()), size=tiny_model.image_size)
    estimated = analyze_pair(tiny_model, views[0], views[1]).cam2_to_cam1.double().numpy()
    expected = rotation_angle_deg(estimated[:3, :3], np.eye(3)) / 30
    assert result["colmap_registered"] == 2
    assert result["two_view_turn_ratio"] == pytest.approx(expected, abs=1e-3)
    assert result["two_view_rre_median_deg"] == pytest.approx(
        rotation_angle_deg(estimated[:3, :3], turned[:3, :3]), abs=1e-2)
