"""A viser web viewer of reconstructions: point cloud, camera frustums with photos, confidence slider."""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointmap.align.scene import Scene
from pointmap.export.cameras import export_cameras, read_cameras_json
from pointmap.export.ply import read_ply
from pointmap.export.points import colors_uint8, gather_points

THUMBNAIL_SIDE = 160  # px: photos on the frustums are downscaled to keep the page light


def _import_viser():
    try:
        import viser
    except ImportError as err:
        raise ImportError(
            "the web viewer needs viser; install it with `pip install pointmap[viewer]` (or `pip install viser`)"
        ) from err
    return viser


@dataclass
class ViewerCamera:
    """What the viewer draws for one camera: pose, field of view and an optional thumbnail.

    Attributes:
        name: shown next to its checkbox.
        cam2world: (4, 4) OpenCV axes.
        fov_y: vertical field of view, radians.
        aspect: width / height.
        thumbnail: (h, w, 3) uint8 RGB or None.
    """

    name: str
    cam2world: np.ndarray
    fov_y: float
    aspect: float
    thumbnail: np.ndarray | None


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    import cv2

    scale = THUMBNAIL_SIDE / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb


def _photo(path: str | None) -> np.ndarray | None:
    """A thumbnail of the photo at `path`, or None when it cannot be read."""
    if path is None or not os.path.isfile(path):
        return None
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            return _thumbnail(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    except OSError:
        return None


def _camera(name: str, cam2world: np.ndarray, K: np.ndarray, width: int, height: int, thumbnail) -> ViewerCamera:
    return ViewerCamera(name, cam2world, 2 * float(np.arctan2(height / 2, K[1, 1])), width / height, thumbnail)


def cameras_from_scene(scene: Scene) -> list[ViewerCamera]:
    """Viewer cameras of a Scene, with thumbnails of its colours."""
    cameras = []
    for index, camera in enumerate(export_cameras(scene)):
        thumbnail = None
        if scene.colors is not None:
            thumbnail = _thumbnail(colors_uint8(scene.colors[index].detach().float().cpu().numpy()))
        cameras.append(
            _camera(camera.name, camera.processed_cam2world, camera.K_processed, camera.processed_width,
                    camera.processed_height, thumbnail)
        )
    return cameras


def load_result(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[ViewerCamera]]:
    """Read a `pointmap reconstruct` folder: xyz (M, 3), rgb (M, 3) uint8, confidence (M,), cameras."""
    folder = Path(folder)
    for needed in ("points.ply", "cameras.json"):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"{folder}: no {needed}; pass a folder written by `pointmap reconstruct`")
    xyz, rgb, confidence = read_ply(folder / "points.ply")
    cameras = []
    for entry in read_cameras_json(folder / "cameras.json"):
        original = entry["original"]
        path = entry["image_path"] or str(folder / "images" / entry["name"])
        cameras.append(
            _camera(entry["name"], entry["cam2world"], original["K"], original["width"], original["height"],
                    _photo(path))
        )
    return xyz, rgb, confidence, cameras


def populate(server, xyz: np.ndarray, rgb: np.ndarray, confidence: np.ndarray, cameras: list[ViewerCamera]) -> dict:
    """Draw points and cameras on a viser server, with a confidence slider and a checkbox per camera.

    Returns:
        The handles: "points" (a one-element list, the current point cloud), "frustums", "slider", "checkboxes".
    """
    viser = _import_viser()
    server.scene.set_up_direction("-y")  # OpenCV world: the first camera's y axis points down
    centres = np.stack([c.cam2world[:3, 3] for c in cameras]) if cameras else np.zeros((1, 3))
    extent = np.concatenate([xyz.astype(np.float64), centres])
    diagonal = float(np.linalg.norm(extent.max(axis=0) - extent.min(axis=0))) or 1.0
    point_size = diagonal / 500

    if hasattr(server, "initial_camera"):  # viser >= 1.0: open on the cloud, not on viser's default (3, 3, 3)
        look_at = np.median(xyz, axis=0) if len(xyz) else centres.mean(axis=0)
        if cameras:  # a little behind the first camera, along its optical axis
            position = cameras[0].cam2world[:3, 3] - 0.25 * diagonal * cameras[0].cam2world[:3, 2]
        else:
            position = look_at - np.array([0.0, 0.0, diagonal])
        server.initial_camera.look_at = look_at.astype(np.float64)
        server.initial_camera.position = position.astype(np.float64)

    handles: dict = {"points": [None], "frustums": [], "checkboxes": []}
    low = float(confidence.min()) if len(confidence) else 1.0
    high = float(confidence.max()) if len(confidence) else 1.0

    def draw_points(threshold: float) -> None:
        keep = confidence >= threshold
        handles["points"][0] = server.scene.add_point_cloud(
            "/points", points=xyz[keep], colors=rgb[keep], point_size=point_size
        )

    with server.gui.add_folder("Points"):
        slider = server.gui.add_slider(
            "min confidence", min=low, max=max(high, low + 1e-3), step=max((high - low) / 100, 1e-3), initial_value=low
        )
    slider.on_update(lambda _: draw_points(slider.value))
    handles["slider"] = slider
    draw_points(low)

    with server.gui.add_folder("Cameras"):
        for index, camera in enumerate(cameras):
            frustum = server.scene.add_camera_frustum(
                f"/cameras/{index}",
                fov=camera.fov_y,
                aspect=camera.aspect,
                scale=0.05 * diagonal,
                image=camera.thumbnail,
                wxyz=viser.transforms.SO3.from_matrix(camera.cam2world[:3, :3]).wxyz,
                position=camera.cam2world[:3, 3],
                color=(230, 60, 60),
            )
            checkbox = server.gui.add_checkbox(camera.name, initial_value=True)
            checkbox.on_update(lambda _, f=frustum, c=checkbox: setattr(f, "visible", c.value))
            handles["frustums"].append(frustum)
            handles["checkboxes"].append(checkbox)
    return handles


def _serve(port: int):
    viser = _import_viser()
    server = viser.ViserServer(host="0.0.0.0", port=port, verbose=False)
    print(f"viewer at http://localhost:{server.get_port()} (Ctrl+C to stop)")
    return server


def show_scene(scene: Scene, port: int = 8080, block: bool = True):
    """Serve a Scene in the browser; with `block` wait until Ctrl+C, else return the viser server."""
    cloud = gather_points(scene)
    server = _serve(port)
    populate(server, cloud.xyz, cloud.rgb, cloud.confidence, cameras_from_scene(scene))
    if block:
        server.sleep_forever()
    return server


def view_folder(folder: str | os.PathLike, port: int = 8080, block: bool = True):
    """Serve a `pointmap reconstruct` output folder in the browser (see `show_scene`)."""
    _import_viser()  # say how to install it before reading anything
    xyz, rgb, confidence, cameras = load_result(folder)
    server = _serve(port)
    populate(server, xyz, rgb, confidence, cameras)
    if block:
        server.sleep_forever()
    return server


def run_demo(model=None, device: str = "cpu", size: int | None = None, port: int = 8080, block: bool = True):
    """A page to upload photos and reconstruct them: the job of the official gradio demo.

    Uploaded files go to a temporary folder; "Reconstruct" runs `pointmap.reconstruct` on them and shows
    the result. The model is loaded once, at start.
    """
    from pointmap.pipeline import reconstruct, resolve_model

    network = resolve_model(model, device)
    upload_dir = Path(tempfile.mkdtemp(prefix="pointmap-demo-"))
    server = _serve(port)
    lock = threading.Lock()
    status = server.gui.add_markdown("Upload two or more photos, then press **Reconstruct**.")
    upload = server.gui.add_upload_button("Add a photo", mime_type="image/*")
    button = server.gui.add_button("Reconstruct")

    @upload.on_upload
    def _(_event) -> None:
        file = upload.value
        (upload_dir / Path(file.name).name).write_bytes(file.content)
        status.content = f"{len(list(upload_dir.iterdir()))} photos uploaded."

    @button.on_click
    def _(_event) -> None:
        if not lock.acquire(blocking=False):
            return
        try:
            status.content = "Reconstructing..."
            scene = reconstruct(upload_dir, model=network, size=size, device=device, verbose=False)
            cloud = gather_points(scene)
            server.scene.reset()
            populate(server, cloud.xyz, cloud.rgb, cloud.confidence, cameras_from_scene(scene))
            status.content = f"{len(scene)} images, {len(cloud)} points."
        except (OSError, ValueError) as err:
            status.content = f"Could not reconstruct: {err}"
        finally:
            lock.release()

    if block:
        server.sleep_forever()
    return server
