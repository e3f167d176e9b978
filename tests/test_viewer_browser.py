"""`pointmap view`'s page in headless Chromium: the WebGL canvas draws the point cloud's colour."""

import shutil
import socket
import subprocess

import numpy as np
import pytest
from PIL import Image

from pointmap.export.cameras import ExportCamera, write_cameras_json
from pointmap.export.ply import write_ply

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MAGENTA = (255, 0, 255)  # a colour nowhere in viser's own interface (panels, axes, frustums)
WINDOW = (800, 600)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_result(folder) -> None:
    """A reconstruct-like folder: a 2 x 2 magenta square of 90,000 points 3 units in front of one camera."""
    grid = np.linspace(-1.0, 1.0, 300)
    x, y = np.meshgrid(grid, grid)
    xyz = np.stack([x.ravel(), y.ravel(), np.full(x.size, 3.0)], axis=-1).astype(np.float32)  # (M, 3)
    rgb = np.broadcast_to(np.array(MAGENTA, dtype=np.uint8), xyz.shape).copy()
    write_ply(folder / "points.ply", xyz, rgb, np.full(len(xyz), 2.0, dtype=np.float32))
    K = np.array([[200.0, 0.0, 159.5], [0.0, 200.0, 119.5], [0.0, 0.0, 1.0]])
    camera = ExportCamera("cam.png", None, np.eye(4), K, 320, 240, K, 320, 240, np.eye(4), np.eye(3))
    write_cameras_json([camera], folder / "cameras.json")


def _screenshot(url: str, folder) -> np.ndarray:
    """(H, W, 3) uint8 screenshot of `url` in headless Chromium with software WebGL (SwiftShader)."""
    profile = folder / "profile"
    profile.mkdir()
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=15000",
        f"--screenshot={folder / 'page.png'}", url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if not (folder / "page.png").is_file():
        raise AssertionError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    with Image.open(folder / "page.png") as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium), as in CI")
def test_view_page_draws_the_point_cloud(tmp_path):
    pytest.importorskip("viser", reason="the viewer needs viser (pip install pointmap[viewer])")
    from pointmap.viewer import view_folder

    _write_result(tmp_path)
    server = view_folder(tmp_path, port=_free_port(), block=False)
    try:
        pixels = _screenshot(f"http://127.0.0.1:{server.get_port()}/", tmp_path)
    finally:
        server.stop()
    assert pixels.shape == (WINDOW[1], WINDOW[0], 3)
    red, green, blue = (pixels[..., channel].astype(int) for channel in range(3))
    # Magenta by hue: the page blends the cloud toward white while it fades in (about (254, 150, 254)).
    cloud = (red - green > 60) & (blue - green > 60) & (np.abs(red - blue) < 40)
    # The square spans about 30 degrees of the opening view (behind the camera, looking at the cloud):
    # several percent of the window. A blank canvas, or a camera looking elsewhere, gives none.
    assert cloud.mean() > 0.02, f"{cloud.sum()} magenta pixels of {cloud.size}"
    rows, columns = np.nonzero(cloud)
    assert abs(np.median(columns) - WINDOW[0] / 2) < WINDOW[0] / 4  # near the middle: the view is aimed at it
    assert abs(np.median(rows) - WINDOW[1] / 2) < WINDOW[1] / 4
