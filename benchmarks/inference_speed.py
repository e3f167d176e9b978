"""Pairs per second of `infer_pairs` (each image encoded once) against per-pair `predict_pair` (the official way).

A complete graph over N random images, random weights. Prints one line per (method, precision):

    python benchmarks/inference_speed.py --config vitl512dpt --images 12 --device cuda
    python benchmarks/inference_speed.py --config tiny --images 6 --device cpu --dtypes fp32
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pointmap.images import View
from pointmap.inference import infer_pairs, resolve_amp_dtype
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R
from pointmap.pairs import make_pairs

CONFIGS = {
    "vitl512dpt": (ModelConfig(), (384, 512)),
    "vitl224linear": (ModelConfig(image_size=224, head_type="linear"), (224, 224)),
    "tiny": (
        ModelConfig(
            image_size=224,
            enc_embed_dim=64,
            enc_depth=2,
            enc_num_heads=4,
            dec_embed_dim=48,
            dec_depth=2,
            dec_num_heads=4,
            head_type="linear",
        ),
        (224, 224),
    ),
}


def random_views(count: int, height: int, width: int, seed: int) -> list[View]:
    gen = torch.Generator().manual_seed(seed)
    return [
        View(torch.rand(3, height, width, generator=gen) * 2 - 1, (height, width), f"{k}", np.eye(3), (height, width))
        for k in range(count)
    ]


def per_pair(model, views, pairs, batch_size, amp, device) -> list[torch.Tensor]:
    """The official scheme: batches of pairs, both images of every pair encoded, outputs to the CPU."""
    outputs = []
    with torch.no_grad(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            img1 = torch.stack([views[i].img for i, _ in batch]).to(device)
            img2 = torch.stack([views[j].img for _, j in batch]).to(device)
            out = model.predict_pair(img1, img2)
            outputs.append(out.pts1.float().cpu())
    return outputs


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--images", type=int, default=8, help="N images, N (N - 1) directed pairs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], help="fp32, bf16, fp16")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up; the best counts")
    args = parser.parse_args()

    config, (height, width) = CONFIGS[args.config]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = DUSt3R(config, device=device).eval()
    views = random_views(args.images, height, width, seed=0)
    pairs = make_pairs(args.images)
    print(f"{args.config} {height}x{width}, {args.images} images, {len(pairs)} pairs, batch {args.batch_size}")
    print(torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    for name in args.dtypes:
        amp = resolve_amp_dtype(name)
        runs = {
            "per-pair": lambda amp=amp: per_pair(model, views, pairs, args.batch_size, amp, device),
            "infer_pairs": lambda amp=amp: infer_pairs(
                model, views, pairs, batch_size=args.batch_size, amp_dtype=amp, device=device, verbose=False
            ),
        }
        best = {}
        for method, fn in runs.items():
            fn()  # warm-up: kernels, autotuning, allocator
            best[method] = min(timed(fn) for _ in range(args.repeats))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                fn()
                memory = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
            else:
                memory = ""
            print(f"  {name:5s} {method:12s} {len(pairs) / best[method]:9.1f} pairs/s{memory}")
        print(f"  {name:5s} speed-up     {best['per-pair'] / best['infer_pairs']:9.2f}x")


if __name__ == "__main__":
    main()
