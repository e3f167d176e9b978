"""Transformer building blocks of the DUSt3R encoder and decoders (CroCo v2 layout, 2D RoPE, SDPA).

Attribute names follow the official state dict (`attn.qkv`, `cross_attn.projq`, `norm_y`, ...) so that
released checkpoints load with strict key matching.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Every LayerNorm of the official network uses this epsilon.
LN_EPS = 1e-6


class PatchEmbed(nn.Module):
    """Non-overlapping square patches to tokens, in row-major order."""

    def __init__(self, patch_size: int, embed_dim: int, device=None, dtype=None) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size, device=device, dtype=dtype)

    def forward(self, img: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, H/p * W/p, C) tokens."""
        return self.proj(img).flatten(2).transpose(1, 2)


class RoPE2D(nn.Module):
    """2D rotary position embedding: the first half of each head's channels rotates with the patch row,
    the second half with the patch column (CroCo v2).

    `tables` returns the cos / signed-sin tables of a patch grid once; every attention layer reuses them.
    """

    def __init__(self, freq: float = 100.0) -> None:
        super().__init__()
        self.freq = freq
        self._cache: dict[tuple, tuple[Tensor, Tensor]] = {}

    def tables(self, grid_h: int, grid_w: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos and signed sin, each (grid_h * grid_w, head_dim) float32, tokens in row-major order.

        `rotate(x) = x * cos + swap_halves(x) * sin` with the sign of rotate-half folded into `sin`.
        """
        key = (grid_h, grid_w, head_dim, str(device))
        if key not in self._cache:
            # Built as normal tensors even under inference_mode, so that the cache also serves training.
            with torch.inference_mode(False):
                self._cache[key] = self._build(grid_h, grid_w, head_dim, device)
        return self._cache[key]

    def _build(self, grid_h: int, grid_w: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
        axis_dim = head_dim // 2
        # float32 throughout, operation for operation like the official tables, so angles match to the bit.
        exponent = torch.arange(0, axis_dim, 2, device=device, dtype=torch.float32) / axis_dim
        inv_freq = 1.0 / (self.freq**exponent)  # (axis_dim / 2,)

        def axis(length: int) -> tuple[Tensor, Tensor]:
            angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
            cos, sin = angles.cos(), angles.sin()  # (length, axis_dim / 2)
            return torch.cat((cos, cos), -1), torch.cat((-sin, sin), -1)  # (length, axis_dim)

        cos_y, sin_y = axis(grid_h)
        cos_x, sin_x = axis(grid_w)
        rows = torch.arange(grid_h, device=device).repeat_interleave(grid_w)  # (N,)
        cols = torch.arange(grid_w, device=device).repeat(grid_h)  # (N,)
        return torch.cat((cos_y[rows], cos_x[cols]), -1), torch.cat((sin_y[rows], sin_x[cols]), -1)


def apply_rope(x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate queries or keys. x: (B, heads, N, D); rope: cos, sin (N, D) from `RoPE2D.tables`."""
    cos, sin = (t.to(x.dtype) for t in rope)
    # swap the two quarters inside each half: [a, b | c, d] -> [b, a | d, c]
    swapped = x.unflatten(-1, (2, 2, x.shape[-1] // 4)).flip(-2).flatten(-3)
    return x * cos + swapped * sin


class Mlp(nn.Module):
    """Linear, GELU, Linear."""

    def __init__(self, dim: int, hidden_dim: int, device=None, dtype=None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, device=device, dtype=dtype)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and RoPE on queries and keys."""

    def __init__(self, dim: int, num_heads: int, device=None, dtype=None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, device=device, dtype=dtype)
        self.proj = nn.Linear(dim, dim, device=device, dtype=dtype)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        """x: (B, N, C); rope: tables of x's grid. Returns (B, N, C)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(apply_rope(q, rope), apply_rope(k, rope), v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class CrossAttention(nn.Module):
    """Multi-head attention of one view's tokens to the other view's; RoPE uses each side's own grid."""

    def __init__(self, dim: int, num_heads: int, device=None, dtype=None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim, device=device, dtype=dtype)
        self.projk = nn.Linear(dim, dim, device=device, dtype=dtype)
        self.projv = nn.Linear(dim, dim, device=device, dtype=dtype)
        self.proj = nn.Linear(dim, dim, device=device, dtype=dtype)

    def forward(
        self, x: Tensor, memory: Tensor, rope_x: tuple[Tensor, Tensor], rope_memory: tuple[Tensor, Tensor]
    ) -> Tensor:
        """x: (B, N, C) queries; memory: (B, M, C) keys and values. Returns (B, N, C)."""
        b, n, c = x.shape
        m = memory.shape[1]
        heads, head_dim = self.num_heads, c // self.num_heads
        q = self.projq(x).view(b, n, heads, head_dim).transpose(1, 2)
        k = self.projk(memory).view(b, m, heads, head_dim).transpose(1, 2)
        v = self.projv(memory).view(b, m, heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(apply_rope(q, rope_x), apply_rope(k, rope_memory), v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class EncoderBlock(nn.Module):
    """Pre-norm ViT block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS, **dd)
        self.attn = Attention(dim, num_heads, **dd)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS, **dd)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), **dd)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        """x: (B, N, C) -> (B, N, C)."""
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Pre-norm block: self-attention, cross-attention to the other view (normalised by norm_y), MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS, **dd)
        self.attn = Attention(dim, num_heads, **dd)
        self.cross_attn = CrossAttention(dim, num_heads, **dd)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS, **dd)
        self.norm3 = nn.LayerNorm(dim, eps=LN_EPS, **dd)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), **dd)
        self.norm_y = nn.LayerNorm(dim, eps=LN_EPS, **dd)

    def forward(
        self, x: Tensor, other: Tensor, rope_x: tuple[Tensor, Tensor], rope_other: tuple[Tensor, Tensor]
    ) -> Tensor:
        """x: (B, N, C) this view; other: (B, M, C) the other view at the same depth. Returns (B, N, C)."""
        x = x + self.attn(self.norm1(x), rope_x)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(other), rope_x, rope_other)
        return x + self.mlp(self.norm3(x))
