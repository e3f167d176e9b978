"""Scene inputs: find them (photo folders, videos) and copy their frames, downscaled, into a work folder."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from tqdm import tqdm

from pointmap.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, expand_paths, read_image, read_video
from pointmap.io_utils import atomic_path


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _has_images(folder: Path) -> bool:
    return any(
        p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") for p in folder.iterdir()
    )


def discover_scenes(inputs: list[Path]) -> dict[str, Path]:
    """Scene name -> input: a folder with photos or a video is one scene; a folder without photos
    contributes each of its sub-folders with photos and each of its videos (a download root).

    Raises ValueError when two scenes would get one name (rename a folder) or an input has no scene.
    """
    scenes: dict[str, Path] = {}

    def add(path: Path) -> None:
        name = path.stem if path.is_file() else path.name
        if name in scenes:
            raise ValueError(f"{path}: scene name {name!r} is also {scenes[name]}; rename one of them")
        scenes[name] = path

    for entry in inputs:
        path = Path(entry)
        if is_video(path) or (path.is_dir() and _has_images(path)):
            add(path)
        elif path.is_dir():
            children = sorted(c for c in path.iterdir() if not c.name.startswith("."))
            found = [c for c in children if is_video(c) or (c.is_dir() and _has_images(c))]
            if not found:
                raise ValueError(f"{path}: no photos, videos or photo sub-folders in it; pass scene folders or videos")
            for child in found:
                add(child)
        else:
            raise FileNotFoundError(f"{path}: not a folder or a video file ({', '.join(VIDEO_EXTENSIONS)})")
    return scenes


def _save(image: Image.Image, path: Path, max_size: int) -> None:
    scale = max_size / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    with atomic_path(path) as tmp:
        image.save(tmp)


def collect_frames(source: Path, image_dir: Path, max_size: int, every: int, verbose: bool = True) -> dict[str, str]:
    """Write the frames of a scene as PNG files, longer side at most max_size, EXIF orientation applied.

    Args:
        source: a folder of photos or a video file (every `every`-th frame is kept).
        image_dir: the folder to write (created).
    Returns:
        PNG file name -> where the frame came from ("clip.mp4#frame=30" for video frames).
    """
    image_dir.mkdir(parents=True, exist_ok=True)
    origin: dict[str, str] = {}
    if is_video(source):
        for index, frame in tqdm(read_video(source, every), desc=f"{source.name} frames", disable=not verbose):
            name = f"{index:06d}.png"
            _save(frame, image_dir / name, max_size)
            origin[name] = f"{source}#frame={index}"
        return origin
    for path in tqdm(expand_paths(source), desc=f"{source.name} photos", disable=not verbose):
        name = f"{path.stem}.png"
        if name in origin:
            raise ValueError(f"{path}: shares its name stem with {origin[name]}; rename one of them")
        _save(read_image(path), image_dir / name, max_size)
        origin[name] = str(path)
    return origin
