"""The DUSt3R network's hyper-parameters, and their translation from the official constructor arguments."""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

OFFICIAL_CLASS = "AsymmetricCroCo3DStereo"

# Defaults of the official constructors (CroCoNet, then AsymmetricCroCo3DStereo), used when an official
# string or hub config.json leaves an argument out.
_OFFICIAL_DEFAULTS: dict[str, Any] = {
    "img_size": 224,
    "patch_size": 16,
    "enc_embed_dim": 768,
    "enc_depth": 12,
    "enc_num_heads": 12,
    "dec_embed_dim": 512,
    "dec_depth": 8,
    "dec_num_heads": 16,
    "mlp_ratio": 4,
    "pos_embed": "cosine",
    "norm_im2_in_dec": True,
    "output_mode": "pts3d",
    "head_type": "linear",
    "depth_mode": ("exp", -math.inf, math.inf),
    "conf_mode": ("exp", 1, math.inf),
}
# Arguments that only matter for training or for the official image batching; inference ignores them.
_OFFICIAL_IGNORED = {"freeze", "landscape_only", "patch_embed_cls", "mask_ratio"}
_PATCH_EMBEDS = {"PatchEmbedDust3R", "ManyAR_PatchEmbed"}


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a DUSt3R network. The defaults are the released ViT-Large 512 DPT model."""

    image_size: int = 512
    """Long side, in pixels, of the images the checkpoint was trained on (224 or 512): picks the resize rule."""
    patch_size: int = 16
    """Side of the square patches the encoder turns into tokens, in pixels."""
    enc_embed_dim: int = 1024
    """Width of the encoder tokens."""
    enc_depth: int = 24
    """Number of encoder blocks."""
    enc_num_heads: int = 16
    """Attention heads in each encoder block."""
    dec_embed_dim: int = 768
    """Width of the decoder tokens."""
    dec_depth: int = 12
    """Number of blocks in each of the two decoders."""
    dec_num_heads: int = 12
    """Attention heads in each decoder block."""
    mlp_ratio: float = 4.0
    """Hidden width of every MLP, as a multiple of its block's width."""
    head_type: Literal["linear", "dpt"] = "dpt"
    """Prediction head: per-patch linear + pixel shuffle, or DPT fusion of encoder and decoder layers."""
    rope_freq: float = 100.0
    """Base frequency of the 2D rotary position embedding applied to queries and keys."""
    depth_mode: Literal["exp", "square", "linear"] = "exp"
    """How a raw head output xyz becomes a point: exp gives xyz / |xyz| * expm1(|xyz|)."""
    conf_mode: Literal["exp", "sigmoid"] = "exp"
    """How a raw head output c becomes a confidence: exp gives conf_min + exp(c)."""
    conf_min: float = 1.0
    """Smallest confidence."""
    conf_max: float | None = None
    """Largest confidence (None: unbounded)."""
    min_conf: float = 3.0
    """Default confidence threshold for kept points and matches with this checkpoint (3: the official demo's
    choice for the released weights; a model trained for less time is less confident and needs a lower one)."""

    def __post_init__(self) -> None:
        for name in ("enc", "dec"):
            dim, heads = getattr(self, f"{name}_embed_dim"), getattr(self, f"{name}_num_heads")
            if dim % heads != 0 or (dim // heads) % 4 != 0:
                raise ValueError(
                    f"{name}_embed_dim={dim} with {name}_num_heads={heads}: the head width must be an "
                    "integer multiple of 4 (2D RoPE rotates pairs on each image axis); change either"
                )
        if self.head_type not in ("linear", "dpt"):
            raise ValueError(f"head_type={self.head_type!r}: pick 'linear' or 'dpt'")
        if self.depth_mode not in ("exp", "square", "linear"):
            raise ValueError(f"depth_mode={self.depth_mode!r}: pick 'exp', 'square' or 'linear'")
        if self.conf_mode not in ("exp", "sigmoid"):
            raise ValueError(f"conf_mode={self.conf_mode!r}: pick 'exp' or 'sigmoid'")
        if self.conf_mode == "sigmoid" and self.conf_max is None:
            raise ValueError("conf_mode='sigmoid' needs a finite conf_max")
        if self.enc_depth < 1 or self.dec_depth < 1:
            raise ValueError(f"enc_depth={self.enc_depth}, dec_depth={self.dec_depth}: both must be >= 1")

    @property
    def dpt_hooks(self) -> tuple[int, int, int, int]:
        """Layers the DPT head fuses: 0 is the encoder output, k the k-th decoder block's output."""
        depth = self.dec_depth
        return (0, depth * 2 // 4, depth * 3 // 4, depth)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown fields raise a ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model config has unknown fields {unknown}; known fields are {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_official_string(cls, text: str) -> ModelConfig:
        """Parse the constructor string stored in official checkpoints, e.g.
        "AsymmetricCroCo3DStereo(pos_embed='RoPE100', img_size=(512, 512), head_type='dpt', ...)".

        Only literals are accepted (numbers, strings, tuples, `inf`); nothing is evaluated.
        """
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as err:
            raise ValueError(f"model string {text[:80]!r} is not a constructor call ({err.msg})") from err
        call = tree.body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            raise ValueError(f"model string {text[:80]!r} is not a call like {OFFICIAL_CLASS}(...)")
        if call.func.id != OFFICIAL_CLASS:
            raise ValueError(
                f"model string builds {call.func.id}, not {OFFICIAL_CLASS}: pointmap runs DUSt3R "
                "checkpoints only (not MASt3R or CroCo ones)"
            )
        if call.args or any(kw.arg is None for kw in call.keywords):
            raise ValueError(f"model string {text[:80]!r}: only keyword arguments are supported")
        kwargs = {kw.arg: _literal(kw.value, text) for kw in call.keywords}
        return cls.from_official_kwargs(kwargs)

    @classmethod
    def from_official_kwargs(cls, kwargs: dict[str, Any]) -> ModelConfig:
        """Build from the official constructor's keyword arguments (the hub's config.json holds them)."""
        args = {**_OFFICIAL_DEFAULTS, **kwargs}
        unknown = sorted(set(args) - set(_OFFICIAL_DEFAULTS) - _OFFICIAL_IGNORED)
        if unknown:
            raise ValueError(f"official model arguments {unknown} are not supported by pointmap")
        if args.get("patch_embed_cls", "PatchEmbedDust3R") not in _PATCH_EMBEDS:
            raise ValueError(f"patch_embed_cls={args['patch_embed_cls']!r}: expected one of {sorted(_PATCH_EMBEDS)}")
        pos_embed = str(args["pos_embed"])
        if not pos_embed.startswith("RoPE"):
            raise ValueError(f"pos_embed={pos_embed!r}: pointmap implements RoPE position embeddings only")
        if args["output_mode"] != "pts3d":
            raise ValueError(f"output_mode={args['output_mode']!r}: only 'pts3d' is supported")
        if not args["norm_im2_in_dec"]:
            raise ValueError("norm_im2_in_dec=False is not supported: released DUSt3R models normalise the memory")
        img_size = args["img_size"]
        sides = tuple(img_size) if isinstance(img_size, (tuple, list)) else (img_size, img_size)
        depth_mode, depth_min, depth_max = args["depth_mode"]
        if (depth_min, depth_max) != (-math.inf, math.inf):
            raise ValueError(f"depth_mode={args['depth_mode']!r}: bounded depth modes are not supported")
        conf_mode, conf_min, conf_max = args["conf_mode"]
        return cls(
            image_size=int(max(sides)),
            patch_size=int(args["patch_size"]),
            enc_embed_dim=int(args["enc_embed_dim"]),
            enc_depth=int(args["enc_depth"]),
            enc_num_heads=int(args["enc_num_heads"]),
            dec_embed_dim=int(args["dec_embed_dim"]),
            dec_depth=int(args["dec_depth"]),
            dec_num_heads=int(args["dec_num_heads"]),
            mlp_ratio=float(args["mlp_ratio"]),
            head_type=args["head_type"],
            rope_freq=float(pos_embed[len("RoPE") :]),
            depth_mode=depth_mode,
            conf_mode=conf_mode,
            conf_min=float(conf_min),
            conf_max=None if math.isinf(conf_max) else float(conf_max),
        )


def _literal(node: ast.expr, text: str) -> Any:
    """Value of a literal node; `inf` and `-inf` are the only names allowed."""
    if isinstance(node, ast.Name) and node.id == "inf":
        return math.inf
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, text)
        if isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(item, text) for item in node.elts)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    raise ValueError(
        f"model string {text[:80]!r}: argument {ast.unparse(node)!r} is not a literal; "
        "only numbers, strings, tuples and inf are accepted"
    )
