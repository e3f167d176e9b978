"""Every exporter refuses a camera no file format can describe, naming it, and writes nothing."""

import math

import numpy as np
import pytest

from pointmap.export import save_scene, write_colmap, write_glb, write_transforms
from pointmap.export.cameras import export_cameras


@pytest.mark.parametrize("focal", [0.0, -30.0, math.nan, math.inf])
def test_every_exporter_refuses_a_bad_focal_and_writes_nothing(scene, tmp_path, focal):
    scene.intrinsics[1, 1, 1] = focal
    message = r"camera 1 \(photo_1\.jpg\): focal length .* not a positive finite number.*known_focals"
    writers = [
        lambda: write_colmap(scene, tmp_path / "colmap"),
        lambda: write_transforms(scene, tmp_path / "transforms.json"),
        lambda: write_glb(scene, tmp_path / "scene.glb"),
        lambda: save_scene(scene, tmp_path / "out"),  # cameras.json and every other file
    ]
    for write in writers:
        with pytest.raises(ValueError, match=message):
            write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"], "an exporter wrote a file before refusing"


def test_a_nan_principal_point_or_pose_is_refused(scene):
    scene.intrinsics[2, 0, 2] = math.nan
    with pytest.raises(ValueError, match=r"camera 2 \(photo_2\.jpg\): its principal point or pose is not finite"):
        export_cameras(scene)
    scene.intrinsics[2, 0, 2] = 16.0
    scene.poses[0, 0, 3] = math.inf
    with pytest.raises(ValueError, match=r"camera 0 \(photo_0\.jpg\)"):
        export_cameras(scene)


def test_good_cameras_pass(scene):
    cameras = export_cameras(scene)
    # 2.5 * 30 px: the conftest's processed focal in original-photo pixels.
    np.testing.assert_allclose([c.K[0, 0] for c in cameras], [75.0] * 3)
