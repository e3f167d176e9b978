"""Throughput of the DUSt3R network: encode + decode of image pairs, per batch size and precision.

Random weights (timing does not depend on them). Prints pairs/s and peak memory for the full pair
(`predict_pair`: both views encoded as one batch, then decoded) and for decode alone (what a cached
encoder costs per edge in a scene graph). With `--official DIR` (a naver/dust3r checkout with croco/
filled in, and einops installed) it also times the official implementation holding the same weights on
the same inputs, and prints the largest difference between the two outputs relative to their scale.

    python benchmarks/model_speed.py                                # ViT-L 512 DPT, 512x384, CUDA if present
    python benchmarks/model_speed.py --official ../dust3r           # ... and the official code side by side
    python benchmarks/model_speed.py --tiny --batch-sizes 1 2       # CPU smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R

# dec_depth 10: the official DPT head refuses fewer decoder blocks
_TINY = ModelConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=64, dec_depth=10, dec_num_heads=4)
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
Outputs = tuple[Tensor, Tensor, Tensor, Tensor]  # pts1, conf1, pts2, conf2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


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


def _official_model(checkout: Path, model: DUSt3R) -> torch.nn.Module:
    """The official AsymmetricCroCo3DStereo of `model`'s config, holding `model`'s weights."""
    sys.path.insert(0, str(checkout.resolve()))
    from dust3r.model import AsymmetricCroCo3DStereo

    c = model.config
    official = AsymmetricCroCo3DStereo(
        output_mode="pts3d",
        head_type=c.head_type,
        depth_mode=(c.depth_mode, -math.inf, math.inf),
        conf_mode=(c.conf_mode, c.conf_min, math.inf if c.conf_max is None else c.conf_max),
        landscape_only=False,
        img_size=(c.image_size, c.image_size),
        patch_size=c.patch_size,
        enc_embed_dim=c.enc_embed_dim,
        enc_depth=c.enc_depth,
        enc_num_heads=c.enc_num_heads,
        dec_embed_dim=c.dec_embed_dim,
        dec_depth=c.dec_depth,
        dec_num_heads=c.dec_num_heads,
        mlp_ratio=c.mlp_ratio,
        pos_embed=f"RoPE{c.rope_freq:g}",
    )
    official.load_state_dict(model.state_dict(), strict=True)
    return official.to(model.dec_norm.weight.device).eval()


def _official_pair(official: torch.nn.Module, img1: Tensor, img2: Tensor) -> Outputs:
    batch = img1.shape[0]

    def view(img: Tensor, name: str) -> dict:
        # distinct instance names: the official code must not take the batch for a symmetrised one
        true_shape = torch.tensor(img.shape[-2:], device=img.device).repeat(batch, 1)
        return {"img": img, "true_shape": true_shape, "instance": [f"{name}{i}" for i in range(batch)]}

    res1, res2 = official(view(img1, "first"), view(img2, "second"))
    return res1["pts3d"], res1["conf"], res2["pts3d_in_other_view"], res2["conf"]


def _ours_pair(model: DUSt3R, img1: Tensor, img2: Tensor) -> Outputs:
    out = model.predict_pair(img1, img2)
    return out.pts1, out.conf1, out.pts2, out.conf2


def _relative_difference(ours: Outputs, theirs: Outputs) -> float:
    """Largest |ours - theirs| over all outputs, each relative to its largest magnitude."""
    pairs = zip(ours, theirs, strict=True)
    return max(((a.float() - b.float()).abs().max() / b.float().abs().max()).item() for a, b in pairs)


def _measure(
    model: DUSt3R,
    official: torch.nn.Module | None,
    batch: int,
    dtype: torch.dtype | None,
    args: argparse.Namespace,
    generator: torch.Generator,
) -> str:
    """One table row for `batch` pairs at `dtype` (None: float32)."""
    device = generator.device
    shape = (batch, 3, args.height, args.width)
    img1 = torch.rand(shape, generator=generator, device=device) * 2 - 1
    img2 = torch.rand(shape, generator=generator, device=device) * 2 - 1
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        _reset_peak(device)
        pair = _time(lambda: model.predict_pair(img1, img2), device, args.warmup, args.iters)
        enc1, enc2 = model.encode(img1), model.encode(img2)
        decode = _time(lambda: model.decode(enc1, enc2), device, args.warmup, args.iters)
        row = f"{batch / pair:>9.2f} {batch / decode:>15.2f} {_peak_memory_gib(device):>9.2f}"
        if official is not None:
            del enc1, enc2
            _reset_peak(device)
            official_pair = _time(lambda: _official_pair(official, img1, img2), device, args.warmup, args.iters)
            peak = _peak_memory_gib(device)
            difference = _relative_difference(_ours_pair(model, img1, img2), _official_pair(official, img1, img2))
            row += f" {batch / official_pair:>10.2f} {official_pair / pair:>8.2f}x {peak:>9.2f}"
            row += f" {difference:>9.1e}"
    return row


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
    parser.add_argument("--compile", action="store_true", help="model.compile_blocks() (warmup compiles)")
    parser.add_argument("--fast-heads", action="store_true", help="heads in the autocast dtype (float32_heads=False)")
    parser.add_argument("--official", type=Path, help="naver/dust3r checkout (with croco/) to compare against")
    args = parser.parse_args()

    device = torch.device(args.device)
    config = dataclasses.replace(_TINY if args.tiny else ModelConfig(), head_type=args.head)
    torch.manual_seed(args.seed)
    model = DUSt3R(config, device=device).eval()
    n_params = sum(p.numel() for p in model.parameters())
    official = _official_model(args.official, model) if args.official else None
    model.float32_heads = not args.fast_heads
    if args.compile:
        model.compile_blocks()
    print(
        f"# {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}, "
        f"{n_params / 1e6:.0f}M parameters, {args.head} head, {args.height}x{args.width} (height x width)"
        f"{', torch.compile' if args.compile else ''}{', heads in the autocast dtype' if args.fast_heads else ''}"
    )
    header = f"{'batch':>5} {'dtype':>5} {'pairs/s':>9} {'decode pairs/s':>15} {'peak GiB':>9}"
    if official is not None:
        header += f" {'official/s':>10} {'speedup':>9} {'peak GiB':>9} {'max diff':>9}"
    print(header)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    for dtype_name in args.dtypes:
        for batch in args.batch_sizes:
            try:
                row = _measure(model, official, batch, _DTYPES[dtype_name], args, generator)
            except torch.OutOfMemoryError:
                print(f"{batch:>5} {dtype_name:>5} {'out of memory':>25}")
                break
            print(f"{batch:>5} {dtype_name:>5} {row}")


if __name__ == "__main__":
    main()
