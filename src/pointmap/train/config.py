"""Training run configuration: dataclasses, read from a TOML file.

TOML rather than YAML: it is read by the standard library (`tomllib`, Python >= 3.11), it is the
format of pyproject.toml, and its types are explicit (`no` stays a string, `1e-4` is a float, which
YAML 1.1 reads as a string). Every section rejects unknown keys with a message naming them.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pointmap.data.augment import AugmentConfig, training_resolutions
from pointmap.data.mix import DatasetSpec
from pointmap.train.losses import LossConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib


@dataclass(frozen=True)
class ModelSection:
    init: Literal["scratch", "weights"] = "scratch"
    """Start from random weights ("scratch", shaped by `config`) or from `weights`."""
    weights: str = ""
    """What `pointmap.model.weights.load_model` takes: an official .pth, a hub folder or id, our own folder."""
    config: dict[str, Any] = field(default_factory=dict)
    """ModelConfig fields for init="scratch" (unset fields keep ModelConfig's defaults)."""
    freeze_encoder: bool = False
    """Train only the decoders and heads (the patch embedding and encoder blocks stay fixed)."""
    image_size: int | None = None
    """With init = "weights": the size rule (224 or 512) the trained model will carry, e.g. 512 to train
    224 weights at 512 (RoPE positions: nothing in the network is tied to a size); None keeps the weights'."""


@dataclass(frozen=True)
class DataSection:
    train: tuple[DatasetSpec, ...] = ()
    """Training datasets, sampled in proportion to their `weight`."""
    eval: tuple[DatasetSpec, ...] = ()
    """Held-out datasets for evaluation (empty: no evaluation)."""
    resolutions: tuple[tuple[int, int], ...] | int = 224
    """(H, W) crops, one drawn per batch; or 224 / 512 for the paper's sets (512: six aspect ratios)."""
    batch_size: int = 8
    """Pairs per optimizer micro-step on each process."""
    num_workers: int = 0
    """DataLoader worker processes per training process, loading the sources without a pool that do not
    render on a GPU (folder datasets, CPU renders); pools and GPU renders are fetched in the process."""
    prefetch: int = 2
    """Batches prepared ahead by a background thread (on a GPU, on its own CUDA stream); 0: none."""
    render_steps: int = 1
    """Micro-steps whose GPU renders (the synthetic engine) are prepared and rendered as one call: the
    engine's fixed cost per call is shared by more pairs. The pairs themselves do not change."""
    eval_batches: int = 4
    """Batches (of batch_size) in one evaluation; the same pairs every time."""
    augment: AugmentConfig = AugmentConfig()
    """Augmentations of the training pairs, applied to whole batches on the training device (evaluation
    pairs are only centre-cropped)."""

    def resolution_list(self) -> tuple[tuple[int, int], ...]:
        """The (H, W) crops as a tuple, presets expanded."""
        if isinstance(self.resolutions, int):
            return tuple(training_resolutions(self.resolutions))
        return self.resolutions


@dataclass(frozen=True)
class OptimSection:
    steps: int = 1000
    """Optimizer steps of the whole run."""
    lr: float = 1e-4
    """Peak learning rate, reached at the end of the warm-up."""
    min_lr: float = 1e-6
    """Learning rate at the end of the cosine decay."""
    warmup_steps: int = 100
    """Linear warm-up from 0 to `lr`."""
    weight_decay: float = 0.05
    """AdamW decoupled weight decay (not applied to biases and normalisation weights)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW moment decay rates."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0: no clipping, the norm is still logged)."""
    accumulation: int = 1
    """Micro-batches per optimizer step."""
    amp: Literal["none", "bf16"] = "none"
    """bf16 autocast of the forward pass (weights and optimizer stay float32)."""
    rewarm_steps: int = 100
    """After resuming from a checkpoint without AdamW moments, ramp the learning rate up again over
    this many steps (fresh moments make the first updates as large as the learning rate allows)."""


@dataclass(frozen=True)
class RunSection:
    seed: int = 0
    """Seeds the model initialisation, the pair sampling and every augmentation."""
    log_every: int = 10
    """Write a metrics row every this many steps."""
    eval_every: int = 500
    """Evaluate every this many steps (and at the end)."""
    checkpoint_every: int = 500
    """Checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept; older ones are deleted."""
    checkpoint_weights: Literal["float32", "float16", "bfloat16"] = "float32"
    """Precision of the weights in a checkpoint (float32 resumes bit-exactly)."""
    checkpoint_optimizer: Literal["float32", "bfloat16", "none"] = "float32"
    """Precision of AdamW's moments in a checkpoint; "none" drops them (rebuilt from zero on resume)."""
    shard_mib: float = 16.0
    """Largest checkpoint shard file, in MiB."""
    cpu_threads: int = 0
    """torch CPU threads for the run (0: torch's default). 1 is much faster for tiny CPU runs on a
    shared machine, where OpenMP threads otherwise wait on each other."""
    compile_blocks: bool = False
    """torch.compile each transformer block (`DUSt3R.compile_blocks`: RoPE, norms, MLPs and residuals
    fused). Compiles at the first steps and again when the batch shape first changes (then with dynamic
    shapes); checkpoints and saved weights keep the plain parameter names."""


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    optim: OptimSection = OptimSection()
    loss: LossConfig = LossConfig()
    run: RunSection = RunSection()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)


def _convert(hint: Any, value: Any, where: str) -> Any:
    """Turn TOML values into the dataclass field types (nested sections, tuples), checking keys."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a table, got {value!r}")
        return build_dataclass(hint, value, where)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return _convert(arg, value, where)
    return value


def build_dataclass(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass `cls` from a (TOML) dict, recursing into nested sections."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
    return cls(**{key: _convert(hints[key], value, f"{where}.{key}") for key, value in values.items()})


def load_config(path: str | Path) -> TrainConfig:
    """Read a TrainConfig from a TOML file (see configs/ for examples)."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: config file not found; see configs/ for examples") from err
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from err
    return build_dataclass(TrainConfig, values, str(path))
