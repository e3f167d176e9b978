"""Reading and writing DUSt3R weights: official .pth checkpoints, hub-layout folders, hub ids, our own folders.

Formats:
- official torch checkpoint: {'args': Namespace(model="AsymmetricCroCo3DStereo(...)"), 'model': state_dict}
  read with `torch.load(weights_only=True)`; the constructor string is parsed with `ast`, never evaluated;
- hub layout (the official `save_pretrained`): config.json with the constructor's keyword arguments, and
  model.safetensors;
- a hub id such as "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt": the hub layout, downloaded and cached by
  huggingface_hub;
- ours: config.json {"format": "pointmap.dust3r", "format_version": 1, "config": ModelConfig fields} and
  model.safetensors.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from pointmap.io_utils import atomic_path, atomic_write_text
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R

FORMAT = "pointmap.dust3r"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "default_model"
_EXAMPLE_HUB_ID = "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"
_WAYS = (
    f"pass a .pth checkpoint, a folder with {CONFIG_NAME} and {WEIGHTS_NAME}, or a hub id such as {_EXAMPLE_HUB_ID}"
)
# The DPT head's projections appear twice in official state dicts: `scratch.layer{N+1}_rn` and its alias
# `scratch.layer_rn.{N}`. safetensors files keep only one name for a shared tensor.
_ALIAS = re.compile(r"^(?P<pre>.*\.scratch\.)layer_rn\.(?P<n>\d)\.weight$")
_CANONICAL = re.compile(r"^(?P<pre>.*\.scratch\.)layer(?P<n>\d)_rn\.weight$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SHOWN = 5


def load_model(
    source: str | os.PathLike | None = None, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> DUSt3R:
    """Load a DUSt3R network in eval mode.

    Args:
        source: None for the bundled default model; a path to an official .pth checkpoint; a folder with
            config.json + model.safetensors (official hub layout or ours); or a hub id like
            "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt" (downloaded once, then read from the cache).
        device: where the weights go.
        dtype: parameter dtype; None keeps float32 (the reference path).
    Returns:
        The network; its weights match the checkpoint's keys and shapes exactly.
    """
    if source is None:
        if not (DEFAULT_MODEL_DIR / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"no bundled model is installed (looked in {DEFAULT_MODEL_DIR}); {_WAYS}")
        source = DEFAULT_MODEL_DIR
    path = Path(source)
    if path.is_dir():
        config, state_dict = _read_folder(path)
    elif path.is_file():
        config, state_dict = _read_file(path)
    elif _HUB_ID.match(str(source)) and path.suffix not in (".pth", ".pt", ".json", ".safetensors"):
        config, state_dict = _read_hub_layout(*_download(str(source)))
    else:
        raise FileNotFoundError(f"{source}: no such file or folder; {_WAYS}")
    return build_model(config, state_dict, str(source), device=device, dtype=dtype)


def save_model(model: DUSt3R, folder: str | os.PathLike) -> Path:
    """Write `model` to `folder` in pointmap's format (config.json + model.safetensors), each file atomically.

    Returns:
        The folder; `load_model(folder)` gives the same weights bit for bit.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if not _ALIAS.match(name)
    }
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    # The config is written last: a folder with a config.json always has its weights.
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict()}
    atomic_write_text(folder / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return folder


def build_model(
    config: ModelConfig,
    state_dict: dict[str, Tensor],
    source: str = "state dict",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> DUSt3R:
    """A DUSt3R of `config` holding `state_dict` (official key names; DPT aliases may be missing).

    Raises:
        ValueError listing missing keys, unexpected keys and shape mismatches.
    """
    model = DUSt3R(config, device="meta")
    state_dict = _with_aliases(state_dict)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        f"{name} {tuple(state_dict[name].shape)} (expected {shape})"
        for name, shape in expected.items()
        if name in state_dict and tuple(state_dict[name].shape) != shape
    )
    problems = [
        f"{len(items)} {what}: {', '.join(items[:_SHOWN])}{', ...' if len(items) > _SHOWN else ''}"
        for what, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong_shape),
        )
        if items
    ]
    if problems:
        raise ValueError(
            f"{source}: the weights do not fit a DUSt3R network of {_describe(config)}: {'; '.join(problems)}. "
            "Is it a DUSt3R checkpoint, with the config it was saved with?"
        )
    dtype = dtype or torch.float32
    state_dict = {
        name: t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for name, t in state_dict.items()
    }
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.eval()


def _describe(config: ModelConfig) -> str:
    return (
        f"encoder {config.enc_embed_dim}x{config.enc_depth}, decoder {config.dec_embed_dim}x{config.dec_depth}, "
        f"{config.head_type} head"
    )


def _with_aliases(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Add whichever of the two names of each DPT projection is missing."""
    out = dict(state_dict)
    for name, tensor in state_dict.items():
        if match := _CANONICAL.match(name):
            out.setdefault(f"{match['pre']}layer_rn.{int(match['n']) - 1}.weight", tensor)
        elif match := _ALIAS.match(name):
            out.setdefault(f"{match['pre']}layer{int(match['n']) + 1}_rn.weight", tensor)
    return out


def _read_file(path: Path) -> tuple[ModelConfig, dict[str, Tensor]]:
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if path.suffix == ".json" or head[:1] in (b"{", b"["):
        raise ValueError(
            f"{path}: is a JSON file, not a checkpoint; pass the folder holding it and {WEIGHTS_NAME}, "
            "or a .pth checkpoint"
        )
    if path.suffix == ".safetensors":
        return _read_hub_layout(path.parent / CONFIG_NAME, path)
    return _read_official_checkpoint(path)


def _read_official_checkpoint(path: Path) -> tuple[ModelConfig, dict[str, Tensor]]:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):
            raise ValueError(f"{path}: cannot read it as a torch checkpoint ({_first_line(err)}); {_WAYS}") from err
        raise ValueError(
            f"{path}: holds Python objects other than tensors and argparse.Namespace, which pointmap does not "
            f"unpickle for safety ({_first_line(err)}); {_WAYS}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(
            f"{path}: cannot read it as a torch checkpoint ({_first_line(err)}); the file may be "
            "truncated or not a checkpoint: download it again"
        ) from err
    model_string = _constructor_string(checkpoint)
    if model_string is None or not isinstance(checkpoint.get("model"), dict):
        found = sorted(checkpoint)[:_SHOWN] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(
            f"{path}: not an official DUSt3R checkpoint: expected a dict with 'args' (holding the model "
            f"constructor string) and 'model' (the state dict), found {found}"
        )
    try:
        config = ModelConfig.from_official_string(model_string)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return config, checkpoint["model"]


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _constructor_string(checkpoint: Any) -> str | None:
    """args.model of an official checkpoint (args is a Namespace, or a dict in re-saved files)."""
    if not isinstance(checkpoint, dict):
        return None
    args = checkpoint.get("args")
    model = args.get("model") if isinstance(args, dict) else getattr(args, "model", None)
    return model if isinstance(model, str) else None


def _read_folder(folder: Path) -> tuple[ModelConfig, dict[str, Tensor]]:
    return _read_hub_layout(folder / CONFIG_NAME, folder / WEIGHTS_NAME)


def _read_hub_layout(config_path: Path, weights: Path) -> tuple[ModelConfig, dict[str, Tensor]]:
    """config.json (official constructor arguments, or ours) and a safetensors state dict."""
    for needed in (config_path, weights):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed.parent}: no {needed.name} in this folder; {_WAYS}")
    try:
        values = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{config_path}: not valid JSON ({err}); restore the file or download the model again"
        ) from err
    if not isinstance(values, dict):
        raise ValueError(f"{config_path}: expected a JSON object, found {type(values).__name__}")
    try:
        if values.get("format") == FORMAT:
            if values.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"format_version {values.get('format_version')!r} is not {FORMAT_VERSION}; update pointmap"
                )
            config = ModelConfig.from_dict(values["config"])
        else:
            config = ModelConfig.from_official_kwargs(values)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{config_path}: not a DUSt3R model config ({err})") from err
    try:
        state_dict = load_file(weights, device="cpu")
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"{weights}: cannot read it as safetensors ({err}); the file may be truncated: download it again"
        ) from err
    return config, state_dict


def _download(repo_id: str) -> tuple[Path, Path]:
    """Cached config.json and model.safetensors of a hub repository."""
    try:
        config_path = hf_hub_download(repo_id, CONFIG_NAME)
        weights_path = hf_hub_download(repo_id, WEIGHTS_NAME)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        raise OSError(
            f"could not get '{repo_id}' from the Hugging Face hub ({type(err).__name__}: "
            f"{_first_line(err)}); there is no local file or folder of that "
            "name either. Check the id and the network, or pass a local path to a .pth checkpoint or a folder "
            f"with {CONFIG_NAME} and {WEIGHTS_NAME}"
        ) from err
    return Path(config_path), Path(weights_path)
