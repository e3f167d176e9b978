"""The held-out regression loss of a model folder on CPU: a config's evaluation pairs and loss, fp32.

    python training/heldout_loss.py src/pointmap/assets/default_model
    python training/heldout_loss.py MODEL_FOLDER --config configs/bundled-224-chunk13-turns.toml

What the trainer logs as the `regr` of its eval rows (MODEL_CARD.md's last column), for weights that no trainer
evaluated: interpolations, say. The config's [[data.eval]] sources are rendered here on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from pointmap.data.mix import build_mix
from pointmap.model.weights import load_model
from pointmap.train.config import load_config
from pointmap.train.trainer import heldout_losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model folder (config.json + model.safetensors)")
    parser.add_argument("--config", default="configs/bundled-224-chunk13-turns.toml",
                        help="training config whose [[data.eval]] pairs and loss are used")
    args = parser.parse_args()
    config = load_config(args.config)
    if not config.data.eval:
        parser.error(f"{args.config} has no [[data.eval]] sources")
    on_cpu = tuple(dataclasses.replace(source, device="cpu") for source in config.data.eval)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, eval=on_cpu),
                                 optim=dataclasses.replace(config.optim, amp="none"))
    losses = heldout_losses(load_model(args.model), build_mix(on_cpu), config, torch.device("cpu"))  # float32
    print(f"{args.model}: held-out regression loss {losses['regr']:.4f}, loss {losses['loss']:.4f} "
          f"({args.config}'s evaluation pairs, CPU, fp32)")


if __name__ == "__main__":
    main()
