"""End-to-end wall time of `pointmap reconstruct` (a fresh process: imports, model loading, images, pairs,
global alignment, every export), the way a user runs it.

    python benchmarks/reconstruct_speed.py                       # 10 rendered 640x480 photos, bundled model
    python benchmarks/reconstruct_speed.py --photos DIR --repeats 3 --model naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt

Without --photos, the photos are --images views of a held-out synthetic room rendered at 640x480 (no
download needed). Prints the wall time of each run and their median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pointmap.eval.synthetic_rooms import SyntheticRoomsConfig, held_out_rooms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, help="folder of photos (default: render --images views)")
    parser.add_argument("--images", type=int, default=10, help="rendered views when no --photos (10)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", help="passed to reconstruct --model (default: the bundled model)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        photos = args.photos
        if photos is None:  # the first held-out room of `pointmap eval synthetic-rooms`, at 640x480
            rooms = held_out_rooms(tmp, SyntheticRoomsConfig(rooms=1, views=args.images, size=(480, 640)), False)
            photos = Path(rooms[0][2][0]).parent
        out = Path(tmp) / "out"
        command = [sys.executable, "-m", "pointmap.cli", "reconstruct", str(photos), "-o", str(out), "--overwrite"]
        command += ["--model", args.model] if args.model else []
        print(f"{' '.join(command[2:])}  ({os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads)")
        times = []
        for run in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"reconstruct failed ({done.returncode}):\n{done.stderr[-2000:]}")
            times.append(time.perf_counter() - start)
            print(f"  run {run + 1}: {times[-1]:.1f} s")
        print(f"median {statistics.median(times):.1f} s end to end")


if __name__ == "__main__":
    main()
