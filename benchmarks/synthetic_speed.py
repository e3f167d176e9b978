"""Synthetic data engine throughput: training pairs per second at 224x224 and 512x384.

    python benchmarks/synthetic_speed.py                       # CUDA if available, else CPU at small sizes
    python benchmarks/synthetic_speed.py --device cpu --sizes 64x64 --batch 4 --batches 2

Prints, per size: full pairs/s of SyntheticPairDataset.render_batch (scene building, camera sampling with
overlap probes, rendering with shadows) and the share of time spent outside rendering (CPU-side setup).
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
    size: tuple[int, int], device: torch.device, batch: int, batches: int, shadows: bool, compiled: bool
) -> dict[str, float]:
    """Pairs/s of render_batch over `batches` batches of `batch` items (after one warm-up batch)."""
    config = SyntheticConfig(shadows=shadows, compiled=compiled)
    dataset = SyntheticPairDataset(config, "train", size, device=device)
    dataset.render_batch(list(range(batch)))  # warm-up: allocator, kernels, first scenes
    _sync(device)
    start = time.perf_counter()
    for b in range(1, batches + 1):
        items = dataset.render_batch(list(range(b * batch, (b + 1) * batch)))
    _sync(device)
    elapsed = time.perf_counter() - start
    overlaps = torch.tensor([item[2] for item in items])
    # The same items at 8x8 pixels: what is left is scene building and camera sampling.
    tiny = SyntheticPairDataset(config, "train", (8, 8), device=device)
    tiny.render_batch(list(range(batch)))
    _sync(device)
    start = time.perf_counter()
    for b in range(1, batches + 1):
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
    parser.add_argument("--compiled", action="store_true", help="torch.compile the ray culling kernel")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    sizes = args.sizes or (["224x224", "384x512"] if gpu else ["64x64"])
    batch = args.batch or (256 if gpu else 4)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {batch}; shadows {not args.no_shadows}; compiled {args.compiled}")
    for text in sizes:
        height, width = (int(v) for v in text.lower().split("x"))
        result = measure((height, width), device, batch, args.batches, not args.no_shadows, args.compiled)
        print(
            f"{width}x{height} (W x H): {result['pairs_per_s']:.1f} pairs/s, setup share {result['setup_share']:.0%}, "
            f"median overlap {result['median_overlap']:.2f}"
        )


if __name__ == "__main__":
    main()
