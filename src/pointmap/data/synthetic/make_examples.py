"""Write the shipped example photos: views around one synthetic room, with their true cameras.

    python -m pointmap.data.synthetic.make_examples examples/ [--seed 7] [--views 6]

Writes room_00.jpg ... (640x480, JPEG quality 90) and cameras.json (per image: K in pixels, OpenCV
cam2world in metres), each file atomically.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ...io_utils import atomic_write_bytes, atomic_write_text
from .capture import room_capture


def write_examples(
    out: str | Path, seed: int = 7, views: int = 6, height: int = 480, width: int = 640, device=None
) -> list[Path]:
    """Render `views` views of room `seed` into `out`; returns the image paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = room_capture(seed, views, height=height, width=width, device=device, supersample=2)
    paths, cameras = [], {}
    for index, sample in enumerate(samples):
        rgb = ((sample.image.permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
        path = out / f"room_{index:02d}.jpg"
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
        cameras[path.name] = {
            "intrinsics": sample.intrinsics.cpu().tolist(),
            "cam2world": sample.cam2world.cpu().tolist(),
            "source": sample.source,
        }
    atomic_write_text(out / "cameras.json", json.dumps(cameras, indent=1) + "\n")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output folder, e.g. examples/")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    for path in write_examples(args.out, args.seed, args.views, device=args.device):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
