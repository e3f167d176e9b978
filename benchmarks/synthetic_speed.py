"""Synthetic data engine throughput: training pairs per second at 224x224 and 512x384.

    python benchmarks/synthetic_speed.py                       # CUDA if available, else CPU at small sizes
    python benchmarks/synthetic_speed.py --device cpu --sizes 64x64 --batch 4 --batches 2

Prints, per size: full pairs/s of SyntheticPairDataset.stream (scene building in worker processes, camera
sampling with overlap probes, rendering with shadows: what a training loop gets) and the share that the
same batches' setup alone (8x8 renders, in one process) would take of that time.
"""

from __future__ import annotations

import argparse
import time

import torch

from pointmap.data.synthetic import SyntheticConfig, SyntheticPairDataset


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    size: tuple[int, int], device: torch.device, batch: int, batches: int, shadows: bool, compiled: bool,
    workers: int,
) -> dict[str, float]:
    """Pairs/s of `batches` batches of `batch` new items (new scenes), rendered with
    SyntheticPairDataset.stream (`workers` processes build the scenes), after one warm-up batch."""
    config = SyntheticConfig(shadows=shadows, compiled=compiled)
    dataset = SyntheticPairDataset(config, "train", size, device=device)
    dataset.render_batch(list(range(batch)))  # warm-up: kernels, compiles
    # The clock starts when the first streamed batch is out (workers started and filled their queue).
    stream = dataset.stream([range(b * batch, (b + 1) * batch) for b in range(1, batches + 2)], workers)
    next(stream)
    _sync(device)
    start = time.perf_counter()
    for items in stream:
        overlaps = torch.tensor([item[2] for item in items])
    _sync(device)
    elapsed = time.perf_counter() - start
    # The same items at 8x8 pixels: what is left is scene building and camera sampling.
    tiny = SyntheticPairDataset(config, "train", (8, 8), device=device)
    tiny.render_batch(list(range(batch)))
    _sync(device)
    start = time.perf_counter()
    for b in range(2, batches + 2):
        tiny.render_batch(list(range(b * batch, (b + 1) * batch)))
    _sync(device)
    setup = time.perf_counter() - start
    return {
        "pairs_per_s": batch * batches / elapsed,
        "setup_share": min(1.0, setup / elapsed),
        "median_overlap": overlaps.median().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        help="HxW sizes (rows x columns); default 224x224 384x512 (GPU) or 64x64 (CPU)",
    )
    parser.add_argument("--batch", type=int, default=None, help="items per render_batch; default 256 (GPU) or 4 (CPU)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--no-shadows", action="store_true")
    parser.add_argument("--compiled", action="store_true", help="torch.compile the texture patterns")
    parser.add_argument("--workers", type=int, default=None, help="scene-building processes; default 8 (GPU), 0 (CPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    sizes = args.sizes or (["224x224", "384x512"] if gpu else ["64x64"])
    batch = args.batch or (256 if gpu else 4)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    workers = args.workers if args.workers is not None else (8 if gpu else 0)
    print(f"device: {name}; batch {batch}; shadows {not args.no_shadows}; compiled {args.compiled}; workers {workers}")
    for text in sizes:
        height, width = (int(v) for v in text.lower().split("x"))
        result = measure((height, width), device, batch, args.batches, not args.no_shadows, args.compiled, workers)
        print(
            f"{width}x{height} (W x H): {result['pairs_per_s']:.1f} pairs/s, in-process setup would take "
            f"{result['setup_share']:.0%} of that, "
            f"median overlap {result['median_overlap']:.2f}"
        )


if __name__ == "__main__":
    main()
