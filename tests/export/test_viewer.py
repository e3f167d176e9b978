import socket

import numpy as np
import pytest
from conftest import build_scene

from pointmap.export import save_scene
from pointmap.export.points import gather_points
from pointmap.viewer import load_result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_load_result_reads_an_export(tmp_path):
    scene = build_scene(tmp_path)
    out = save_scene(scene, tmp_path / "out")
    xyz, rgb, confidence, cameras = load_result(out)
    np.testing.assert_allclose(xyz, gather_points(scene).xyz)
    assert len(cameras) == 3 and cameras[0].thumbnail.shape == (72, 88, 3)
    # fov from the original K: 2 atan((H / 2) / fy) with fy = 2.5 * 30.
    assert cameras[0].fov_y == pytest.approx(2 * np.arctan(36 / 75))
    with pytest.raises(FileNotFoundError, match="points.ply"):
        load_result(tmp_path)


def test_viewer_serves_points_and_cameras(tmp_path):
    viser = pytest.importorskip("viser")
    from pointmap.viewer import populate

    out = save_scene(build_scene(tmp_path), tmp_path / "out")
    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        xyz, rgb, confidence, cameras = load_result(out)
        handles = populate(server, xyz, rgb, confidence, cameras)
        assert len(handles["frustums"]) == 3
        assert len(handles["points"][0].points) == len(xyz)
        handles["slider"].value = 5.0
        assert len(handles["points"][0].points) == int((confidence >= 5.0).sum())
        handles["checkboxes"][1].value = False
        assert not handles["frustums"][1].visible and handles["frustums"][0].visible
    finally:
        server.stop()
