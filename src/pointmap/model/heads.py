"""Prediction heads: decoder tokens to a dense pointmap and confidence.

A head takes the layers it `hooks` from the list [encoder output, decoder block 1, ..., decoder block L]
(the last one after dec_norm) and returns the raw (B, H, W, 4) map that `postprocess` turns into points
and confidences. Module names follow the official state dict, aliases included.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pointmap.model.config import ModelConfig


class LinearHead(nn.Module):
    """One Linear per token to a patch of p x p outputs, laid out by a pixel shuffle."""

    def __init__(self, dec_dim: int, patch_size: int, out_channels: int = 4, device=None, dtype=None) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.out_channels = out_channels
        self.proj = nn.Linear(dec_dim, out_channels * patch_size**2, device=device, dtype=dtype)

    def forward(self, layers: list[Tensor], grid_h: int, grid_w: int) -> Tensor:
        """layers[-1]: (B, grid_h * grid_w, C) last decoder tokens -> (B, H, W, out_channels) raw map."""
        tokens = layers[-1]
        b, p, c = tokens.shape[0], self.patch_size, self.out_channels
        # The Linear's outputs are ordered (channel, row in patch, column in patch), as pixel_shuffle reads them;
        # one permute writes the channels-last map directly.
        out = self.proj(tokens).view(b, grid_h, grid_w, c, p, p)
        return out.permute(0, 1, 4, 2, 5, 3).reshape(b, grid_h * p, grid_w * p, c)


class _ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x))))."""

    def __init__(self, dim: int, device=None, dtype=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, device=device, dtype=dtype)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))


class _FusionBlock(nn.Module):
    """Adds a refined skip map to the coarser path, refines, upsamples x2 and mixes channels (1x1 conv)."""

    def __init__(self, dim: int, device=None, dtype=None) -> None:
        super().__init__()
        self.resConfUnit1 = _ResidualConvUnit(dim, device, dtype)
        self.resConfUnit2 = _ResidualConvUnit(dim, device, dtype)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.out_conv = nn.Conv2d(dim, dim, 1, device=device, dtype=dtype)

    def forward(self, path: Tensor, skip: Tensor | None = None) -> Tensor:
        """path, skip: (B, C, h, w) -> (B, C, 2h, 2w)."""
        if skip is not None:
            path = path + self.resConfUnit1(skip)
        return self.out_conv(self.upsample(self.resConfUnit2(path)))


class _Scratch(nn.Module):
    """Projections of the four reassembled maps to a common width, and the four fusion blocks."""

    def __init__(self, in_dims: tuple[int, ...], dim: int, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.layer1_rn = nn.Conv2d(in_dims[0], dim, 3, padding=1, bias=False, **dd)
        self.layer2_rn = nn.Conv2d(in_dims[1], dim, 3, padding=1, bias=False, **dd)
        self.layer3_rn = nn.Conv2d(in_dims[2], dim, 3, padding=1, bias=False, **dd)
        self.layer4_rn = nn.Conv2d(in_dims[3], dim, 3, padding=1, bias=False, **dd)
        # The official state dict stores each of these convolutions twice, also as `layer_rn.N`:
        # the same modules, listed again, reproduce those keys.
        self.layer_rn = nn.ModuleList([self.layer1_rn, self.layer2_rn, self.layer3_rn, self.layer4_rn])
        self.refinenet1 = _FusionBlock(dim, **dd)
        self.refinenet2 = _FusionBlock(dim, **dd)
        self.refinenet3 = _FusionBlock(dim, **dd)
        self.refinenet4 = _FusionBlock(dim, **dd)


class _DPT(nn.Module):
    """Reassembles four token layers into maps at 1/4, 1/8, 1/16 and 1/32 of the image, fuses them
    coarse to fine, and regresses the output at full resolution."""

    def __init__(
        self,
        token_dims: tuple[int, int, int, int],
        out_channels: int,
        layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768),
        feature_dim: int = 256,
        last_dim: int = 128,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        d0, d1, d2, d3 = layer_dims
        self.act_postprocess = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(token_dims[0], d0, 1, **dd), nn.ConvTranspose2d(d0, d0, 4, stride=4, **dd)
                ),
                nn.Sequential(
                    nn.Conv2d(token_dims[1], d1, 1, **dd), nn.ConvTranspose2d(d1, d1, 2, stride=2, **dd)
                ),
                nn.Sequential(nn.Conv2d(token_dims[2], d2, 1, **dd)),
                nn.Sequential(
                    nn.Conv2d(token_dims[3], d3, 1, **dd), nn.Conv2d(d3, d3, 3, stride=2, padding=1, **dd)
                ),
            ]
        )
        self.scratch = _Scratch(layer_dims, feature_dim, **dd)
        # The coarsest fusion block has no skip input, so its first unit never runs; frozen, it does not
        # leave DDP waiting for gradients.
        self.scratch.refinenet4.resConfUnit1.requires_grad_(False)
        self.head = nn.Sequential(
            nn.Conv2d(feature_dim, feature_dim // 2, 3, padding=1, **dd),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(feature_dim // 2, last_dim, 3, padding=1, **dd),
            nn.ReLU(),
            nn.Conv2d(last_dim, out_channels, 1, **dd),
        )

    def forward(self, layers: list[Tensor], grid_h: int, grid_w: int) -> Tensor:
        """layers: four (B, grid_h * grid_w, C_k) -> (B, out_channels, 16 grid_h, 16 grid_w)."""
        maps = [
            self.scratch.layer_rn[k](post(t.transpose(1, 2).unflatten(2, (grid_h, grid_w))))
            for k, (post, t) in enumerate(zip(self.act_postprocess, layers, strict=True))
        ]
        # The stride-2 conv rounds odd grids up; crop the upsampled coarsest path back to the 1/16 grid.
        path = self.scratch.refinenet4(maps[3])[:, :, : maps[2].shape[2], : maps[2].shape[3]]
        path = self.scratch.refinenet3(path, maps[2])
        path = self.scratch.refinenet2(path, maps[1])
        path = self.scratch.refinenet1(path, maps[0])
        return self.head(path)


class DPTHead(nn.Module):
    """DPT head over the encoder output and three decoder layers (hooks 0, L/2, 3L/4, L)."""

    def __init__(
        self,
        enc_dim: int,
        dec_dim: int,
        hooks: tuple[int, int, int, int],
        out_channels: int = 4,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.hooks = hooks
        self.dpt = _DPT((enc_dim, dec_dim, dec_dim, dec_dim), out_channels, device=device, dtype=dtype)

    def forward(self, layers: list[Tensor], grid_h: int, grid_w: int) -> Tensor:
        """layers: the four hooked (B, grid_h * grid_w, C) token layers -> (B, H, W, out_channels) raw map."""
        return self.dpt(layers, grid_h, grid_w).permute(0, 2, 3, 1)


def postprocess(raw: Tensor, config: ModelConfig) -> tuple[Tensor, Tensor]:
    """Raw head output to points and confidences.

    Args:
        raw: (B, H, W, 4): xyz then the confidence logit.
        config: depth_mode, conf_mode, conf_min, conf_max.
    Returns:
        pts3d (B, H, W, 3) and conf (B, H, W), same dtype as raw.
    """
    xyz, logit = raw[..., :3], raw[..., 3]
    if config.depth_mode == "linear":
        pts3d = xyz
    else:
        dist = xyz.norm(dim=-1, keepdim=True)
        direction = xyz / dist.clamp(min=1e-8)
        pts3d = direction * (torch.expm1(dist) if config.depth_mode == "exp" else dist.square())
    if config.conf_mode == "exp":
        conf = logit.exp()
        if config.conf_max is not None:
            conf = conf.clamp(max=config.conf_max - config.conf_min)
        conf = config.conf_min + conf
    else:
        conf = config.conf_min + (config.conf_max - config.conf_min) * torch.sigmoid(logit)
    return pts3d, conf
