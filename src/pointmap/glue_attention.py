"""LightGlue's cross-attention through PyTorch's fused attention on a CPU.

kornia's LightGlue (behind XFeat's LighterGlue and the ALIKED matcher) takes `scaled_dot_product_attention` in its
cross-attention on CUDA only (in half precision there). On a CPU it builds the (M, N) similarity of the two images'
tokens, softmaxes it once each way and multiplies by the values: most of a match's time there. The bidirectional
attention is two ordinary attentions that share the query-key projection (image 0's tokens attend to image 1's,
softmax over image 1, and image 1's to image 0's), so two fused calls compute it without the (M, N) matrices.
XFeat's LighterGlue at 2048 keypoints on the 2-core CPU, the skull set's 190 pairs: 0.49 s a pair before, 0.23 s
after, the same matches but for rounding at the match threshold (2 pairs differ; `benchmarks/matching_speed.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LAYERS = ("to_qk", "to_v", "to_out", "ffn")
"""The layers of kornia's `CrossBlock` that `FusedCrossBlock` takes over (kornia 0.7-0.9)."""


class FusedCrossBlock(nn.Module):
    """The layers of a kornia LightGlue `CrossBlock` (`to_qk`, `to_v`, `to_out`, `ffn`), with both directions of
    its attention computed by `F.scaled_dot_product_attention`."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.heads = block.heads
        self.to_qk, self.to_v, self.to_out, self.ffn = (getattr(block, name) for name in _LAYERS)

    def _split_heads(self, tokens: Tensor) -> Tensor:
        """(B, K, D) -> (B, heads, K, D / heads)."""
        return tokens.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x0: Tensor, x1: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x0 (B, M, D) and x1 (B, N, D) tokens of the two images, each updated by what it reads in the other;
        `mask` (B, heads or 1, M, N) is True where a pair of tokens may attend."""
        qk0, qk1 = self._split_heads(self.to_qk(x0)), self._split_heads(self.to_qk(x1))
        v0, v1 = self._split_heads(self.to_v(x0)), self._split_heads(self.to_v(x1))
        # Both sides scaled by d^-1/4 before the product, as kornia does, rather than the product by d^-1/2 inside
        # the kernel: the same float32 rounding as kornia's, hence its matches (the kernel's own scaling dropped one
        # match in 64 skull pairs against float64, this none).
        scale = qk0.shape[-1] ** -0.25
        qk0, qk1 = qk0 * scale, qk1 * scale
        mask_back = None if mask is None else mask.transpose(-1, -2)
        read0 = F.scaled_dot_product_attention(qk0, qk1, v1, attn_mask=mask, scale=1.0)  # (B, heads, M, D / heads)
        read1 = F.scaled_dot_product_attention(qk1, qk0, v0, attn_mask=mask_back, scale=1.0)  # (B, heads, N, ...)
        if mask is not None:  # a token that may attend to none reads nothing (not NaN)
            read0, read1 = read0.nan_to_num(), read1.nan_to_num()
        read0, read1 = (self.to_out(read.transpose(1, 2).flatten(-2)) for read in (read0, read1))
        return x0 + self.ffn(torch.cat([x0, read0], -1)), x1 + self.ffn(torch.cat([x1, read1], -1))


def _computes_the_same(block: nn.Module) -> bool:
    """Whether a `FusedCrossBlock` of `block` gives `block`'s own output on a few random tokens (a kornia whose
    cross-attention computes something else under the same layer names is left alone)."""
    generator = torch.Generator().manual_seed(0)
    width = block.to_qk.in_features
    x0, x1 = (torch.randn(1, count, width, generator=generator) for count in (7, 5))
    parameter = next(block.parameters())
    x0, x1 = x0.to(parameter), x1.to(parameter)
    with torch.inference_mode():
        expected, fused = block(x0, x1), FusedCrossBlock(block)(x0, x1)
    return all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(fused, expected, strict=True))


def fuse_cross_attention(lightglue: nn.Module) -> bool:
    """Replace, in place, every cross-attention block of kornia's `LightGlue` by a `FusedCrossBlock` of its own
    layers; False (nothing changed) where the network is not laid out as kornia 0.7-0.9 lays it out or its first
    block computes something else (`_computes_the_same`). For a network on the CPU: on CUDA kornia's own path is
    fused already."""
    layers = getattr(lightglue, "transformers", None)
    blocks = [getattr(layer, "cross_attn", None) for layer in layers or []]
    if not blocks or not all(hasattr(block, "heads") and all(hasattr(block, n) for n in _LAYERS) for block in blocks):
        return False
    if not _computes_the_same(blocks[0]):
        return False
    for layer, block in zip(layers, blocks, strict=True):
        layer.cross_attn = FusedCrossBlock(block)
    return True
