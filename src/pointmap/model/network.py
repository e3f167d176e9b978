"""The DUSt3R network: a siamese ViT encoder run once per image, two cross-attending decoders and heads
run per pair, predicting both pointmaps in the first camera's frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pointmap.model.config import ModelConfig
from pointmap.model.heads import DPTHead, LinearHead, postprocess
from pointmap.model.layers import LN_EPS, DecoderBlock, EncoderBlock, PatchEmbed, RoPE2D


@dataclass
class EncodedImage:
    """Encoder output of a batch of images of one shape; cache it to decode many pairs.

    Attributes:
        tokens: (B, N, C_enc) after enc_norm, N = (height / 16) * (width / 16) in row-major order.
        height: image height in pixels.
        width: image width in pixels.
    """

    tokens: Tensor
    height: int
    width: int

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, index: Tensor | Sequence[int] | slice | int) -> EncodedImage:
        """A batch subset: a LongTensor or list of indices, a slice, or an int (kept as a batch of 1)."""
        if isinstance(index, int):
            index = [index]
        if isinstance(index, Sequence):
            index = torch.as_tensor(index, dtype=torch.long, device=self.tokens.device)
        return EncodedImage(self.tokens[index], self.height, self.width)

    def to(self, device: torch.device | str) -> EncodedImage:
        """The same encoding on another device (e.g. a GPU batch from a CPU cache)."""
        return EncodedImage(self.tokens.to(device, non_blocking=True), self.height, self.width)

    @staticmethod
    def cat(items: Sequence[EncodedImage]) -> EncodedImage:
        """Concatenate along the batch; all items must come from images of one shape."""
        if not items:
            raise ValueError("EncodedImage.cat got an empty list; pass at least one EncodedImage")
        shapes = {(item.height, item.width) for item in items}
        if len(shapes) > 1:
            raise ValueError(
                f"EncodedImage.cat got images of shapes {sorted(shapes)} (height, width); "
                "batch only encodings of one shape"
            )
        return EncodedImage(torch.cat([item.tokens for item in items]), items[0].height, items[0].width)


@dataclass
class PairOutput:
    """Predictions for a batch of image pairs (view 1, view 2).

    Attributes:
        pts1: (B, H, W, 3) view 1's points in view 1's camera frame.
        conf1: (B, H, W) confidence of pts1, >= 1.
        pts2: (B, H2, W2, 3) view 2's points in view 1's camera frame.
        conf2: (B, H2, W2) confidence of pts2, >= 1.
    """

    pts1: Tensor
    conf1: Tensor
    pts2: Tensor
    conf2: Tensor


class DUSt3R(nn.Module):
    """The DUSt3R network (Wang et al., CVPR 2024) with the official parameter names.

    `encode` runs the shared encoder on images; `decode` runs the two decoders and heads on a pair of
    encodings; `predict_pair` (and calling the module) does both. Inputs are (B, 3, H, W) in [-1, 1] with
    H and W multiples of 16, landscape or portrait; the two views of a pair may differ in shape.
    float32 is the reference path; under torch.autocast the transformer runs in the autocast dtype and the
    heads in float32, as in the official code (set `float32_heads = False` to run them in the autocast dtype).
    """

    def __init__(self, config: ModelConfig | None = None, device=None, dtype=None) -> None:
        super().__init__()
        config = config or ModelConfig()
        self.config = config
        dd = {"device": device, "dtype": dtype}
        enc_dim, dec_dim = config.enc_embed_dim, config.dec_embed_dim
        self.patch_embed = PatchEmbed(config.patch_size, enc_dim, **dd)
        self.rope = RoPE2D(config.rope_freq)
        self.enc_blocks = nn.ModuleList(
            EncoderBlock(enc_dim, config.enc_num_heads, config.mlp_ratio, **dd) for _ in range(config.enc_depth)
        )
        self.enc_norm = nn.LayerNorm(enc_dim, eps=LN_EPS, **dd)
        # CroCo's pre-training token for masked patches: never used by DUSt3R, kept so that official
        # state dicts load with strict key matching. Frozen: DDP would otherwise wait for its gradient.
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim, **dd), requires_grad=False)
        self.decoder_embed = nn.Linear(enc_dim, dec_dim, **dd)
        self.dec_blocks = nn.ModuleList(
            DecoderBlock(dec_dim, config.dec_num_heads, config.mlp_ratio, **dd) for _ in range(config.dec_depth)
        )
        self.dec_blocks2 = nn.ModuleList(
            DecoderBlock(dec_dim, config.dec_num_heads, config.mlp_ratio, **dd) for _ in range(config.dec_depth)
        )
        self.dec_norm = nn.LayerNorm(dec_dim, eps=LN_EPS, **dd)
        self.downstream_head1 = self._make_head(**dd)
        self.downstream_head2 = self._make_head(**dd)
        # Under autocast, heads run in float32 (the official behaviour); False runs them in the autocast dtype:
        # faster DPT heads, points rounded to that precision.
        self.float32_heads = True

    def compile_blocks(self, mode: str | None = None) -> DUSt3R:
        """torch.compile each transformer block in place (regional compilation: one compiled graph serves
        all blocks of a kind, so compiling takes seconds, not minutes), fusing RoPE, norms and residuals.

        Args:
            mode: torch.compile mode, e.g. "max-autotune"; None for the default.
        Returns:
            self.
        """
        for block in (*self.enc_blocks, *self.dec_blocks, *self.dec_blocks2):
            block.compile(mode=mode)
        return self

    def _make_head(self, device=None, dtype=None) -> nn.Module:
        config = self.config
        if config.head_type == "dpt":
            return DPTHead(config.enc_embed_dim, config.dec_embed_dim, config.dpt_hooks, device=device, dtype=dtype)
        return LinearHead(config.dec_embed_dim, config.patch_size, device=device, dtype=dtype)

    @property
    def image_size(self) -> int:
        """Long side (224 or 512) of the images the checkpoint expects."""
        return self.config.image_size

    def _check_image(self, img: Tensor, name: str) -> None:
        if not isinstance(img, Tensor) or img.ndim != 4 or img.shape[1] != 3:
            shape = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
            raise ValueError(f"{name} is {shape}; expected a (B, 3, H, W) float tensor in [-1, 1]")
        height, width = img.shape[-2:]
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(
                f"image of {height}x{width} (height x width): height and width must be multiples of {p}; "
                "use load_images to resize"
            )

    def _rope(self, height: int, width: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
        p = self.config.patch_size
        return self.rope.tables(height // p, width // p, head_dim, device)

    def encode(self, img: Tensor) -> EncodedImage:
        """Encode images of one shape.

        Args:
            img: (B, 3, H, W) in [-1, 1], H and W multiples of 16.
        Returns:
            EncodedImage with tokens (B, H/16 * W/16, C_enc).
        """
        self._check_image(img, "img")
        height, width = img.shape[-2:]
        head_dim = self.config.enc_embed_dim // self.config.enc_num_heads
        rope = self._rope(height, width, head_dim, img.device)
        # images in the weights' dtype, so that a model cast to bfloat16 takes the usual float32 images
        x = self.patch_embed(img.to(self.patch_embed.proj.weight.dtype))
        for block in self.enc_blocks:
            x = block(x, rope)
        return EncodedImage(self.enc_norm(x), int(height), int(width))

    def decode(self, enc1: EncodedImage, enc2: EncodedImage) -> PairOutput:
        """Decode pairs (enc1[b], enc2[b]): both pointmaps in view 1's frame.

        Args:
            enc1: B encodings of view 1 (H, W).
            enc2: B encodings of view 2 (H2, W2); the shapes may differ from view 1's.
        Returns:
            PairOutput in float32 (in the weights' dtype if the whole model was cast).
        """
        if len(enc1) != len(enc2):
            raise ValueError(f"decode got {len(enc1)} view-1 and {len(enc2)} view-2 encodings; pass equal batches")
        config = self.config
        head_dim = config.dec_embed_dim // config.dec_num_heads
        device = enc1.tokens.device
        rope1 = self._rope(enc1.height, enc1.width, head_dim, device)
        rope2 = self._rope(enc2.height, enc2.width, head_dim, device)
        hooks = config.dpt_hooks if config.head_type == "dpt" else (config.dec_depth,)
        # Layers the heads read: depth 0 is the encoder output, depth k the k-th decoder block's output.
        kept1, kept2 = {0: enc1.tokens}, {0: enc2.tokens}
        x1, x2 = self.decoder_embed(enc1.tokens), self.decoder_embed(enc2.tokens)
        for depth, (block1, block2) in enumerate(zip(self.dec_blocks, self.dec_blocks2, strict=True), start=1):
            # Both decoders read the other view's tokens of the previous depth.
            x1, x2 = block1(x1, x2, rope1, rope2), block2(x2, x1, rope2, rope1)
            if depth == config.dec_depth:
                x1, x2 = self.dec_norm(x1), self.dec_norm(x2)
            if depth in hooks:
                kept1[depth], kept2[depth] = x1, x2
        layers1 = [kept1[depth] for depth in hooks]
        layers2 = [kept2[depth] for depth in hooks]
        pts1, conf1 = self._head(self.downstream_head1, layers1, enc1)
        pts2, conf2 = self._head(self.downstream_head2, layers2, enc2)
        return PairOutput(pts1=pts1, conf1=conf1, pts2=pts2, conf2=conf2)

    def _head(self, head: nn.Module, layers: list[Tensor], enc: EncodedImage) -> tuple[Tensor, Tensor]:
        grid = (enc.height // self.config.patch_size, enc.width // self.config.patch_size)
        if not self.float32_heads:
            # the convolutions in the autocast dtype; exp() of the outputs still in float32
            return postprocess(head(layers, *grid).float(), self.config)
        # Heads run outside autocast, in their weights' dtype (float32 unless the whole model was cast), as
        # in the official code: exp() of the outputs amplifies rounding errors.
        with torch.autocast(device_type=enc.tokens.device.type, enabled=False):
            dtype = next(head.parameters()).dtype
            return postprocess(head([t.to(dtype) for t in layers], *grid), self.config)

    def predict_pair(self, img1: Tensor, img2: Tensor) -> PairOutput:
        """Encode both views (as one batch when their shapes match) and decode.

        Args:
            img1: (B, 3, H, W) view 1 in [-1, 1].
            img2: (B, 3, H2, W2) view 2 in [-1, 1].
        Returns:
            PairOutput: pts1 (B, H, W, 3) and pts2 (B, H2, W2, 3), both in view 1's frame, with confidences.
        """
        self._check_image(img1, "img1")
        self._check_image(img2, "img2")
        if img1.shape[0] != img2.shape[0]:
            raise ValueError(f"img1 has batch {img1.shape[0]} but img2 has {img2.shape[0]}; pass equal batches")
        if img1.shape == img2.shape:
            both = self.encode(torch.cat((img1, img2)))
            batch = img1.shape[0]
            enc1 = EncodedImage(both.tokens[:batch], both.height, both.width)
            enc2 = EncodedImage(both.tokens[batch:], both.height, both.width)
        else:
            enc1, enc2 = self.encode(img1), self.encode(img2)
        return self.decode(enc1, enc2)

    def forward(self, img1: Tensor, img2: Tensor) -> PairOutput:
        """Same as `predict_pair`."""
        return self.predict_pair(img1, img2)

