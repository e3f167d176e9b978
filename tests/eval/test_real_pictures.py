"""benchmarks/real_pictures.py: sets marked `pictures = false` get figures only, no renders or photo sheet."""

import importlib.util
import shutil
from pathlib import Path

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
        for photo in ("room_00.jpg", "room_01.jpg"):
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
