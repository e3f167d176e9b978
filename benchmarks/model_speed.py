"""Throughput of the DUSt3R network: encode + decode of image pairs, per batch size and precision.

Random weights (timing does not depend on them). Prints pairs/s and peak memory for the full pair
(`predict_pair`: both views encoded as one batch, then decoded) and for decode alone (what a cached
encoder costs per edge in a scene graph).

    python benchmarks/model_speed.py                                # ViT-L 512 DPT, 512x384, CUDA if present
    python benchmarks/model_speed.py --tiny --batch-sizes 1 2       # CPU smoke run in seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from collections.abc import Callable

import torch

from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R

_TINY = ModelConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=64, dec_depth=4, dec_num_heads=4)
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    # ru_maxrss is in KiB on Linux: the process's peak, not this measurement's alone
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _time(step: Callable[[], object], device: torch.device, warmup: int, iters: int) -> float:
    """Seconds per call."""
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--dtypes", nargs="+", choices=sorted(_DTYPES), default=["fp32", "bf16", "fp16"])
    parser.add_argument("--head", choices=["dpt", "linear"], default="dpt")
    parser.add_argument("--tiny", action="store_true", help="a small random config, for a CPU smoke run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="torch.compile encode and decode (warmup compiles)")
    args = parser.parse_args()

    device = torch.device(args.device)
    config = dataclasses.replace(_TINY if args.tiny else ModelConfig(), head_type=args.head)
    torch.manual_seed(args.seed)
    model = DUSt3R(config, device=device).eval()
    n_params = sum(p.numel() for p in model.parameters())
    if args.compile:
        # instance attributes shadow the methods, so predict_pair also goes through the compiled functions
        model.encode = torch.compile(model.encode)
        model.decode = torch.compile(model.decode)
    print(
        f"# {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}, "
        f"{n_params / 1e6:.0f}M parameters, {args.head} head, {args.height}x{args.width} (height x width)"
        f"{', torch.compile' if args.compile else ''}"
    )
    print(f"{'batch':>5} {'dtype':>5} {'pairs/s':>9} {'decode pairs/s':>15} {'peak GiB':>9}")
    generator = torch.Generator(device=device).manual_seed(args.seed)
    for dtype_name in args.dtypes:
        for batch in args.batch_sizes:
            try:
                pair, decode = _measure(model, batch, _DTYPES[dtype_name], args, generator)
            except torch.OutOfMemoryError:
                print(f"{batch:>5} {dtype_name:>5} {'out of memory':>25}")
                break
            print(
                f"{batch:>5} {dtype_name:>5} {batch / pair:>9.2f} {batch / decode:>15.2f} "
                f"{_peak_memory_gib(device):>9.2f}"
            )


def _measure(
    model: DUSt3R, batch: int, dtype: torch.dtype | None, args: argparse.Namespace, generator: torch.Generator
) -> tuple[float, float]:
    """Seconds per batch of pairs: predict_pair, and decode of cached encodings."""
    device = generator.device
    shape = (batch, 3, args.height, args.width)
    img1 = torch.rand(shape, generator=generator, device=device) * 2 - 1
    img2 = torch.rand(shape, generator=generator, device=device) * 2 - 1
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        pair = _time(lambda: model.predict_pair(img1, img2), device, args.warmup, args.iters)
        enc1, enc2 = model.encode(img1), model.encode(img2)
        decode = _time(lambda: model.decode(enc1, enc2), device, args.warmup, args.iters)
    return pair, decode

if __name__ == "__main__":
    main()
