"""The held-out regression loss of a model folder on CPU: a config's evaluation pairs and loss, fp32.

    python training/heldout_loss.py src/pointmap/assets/default_model
    python training/heldout_loss.py MODEL_FOLDER --config configs/bundled-224-chunk13-turns.toml

What the trainer logs as the `regr` of its eval rows (MODEL_CARD.md's last column), for weights that no trainer
evaluated: interpolations, say. The config's [[data.eval]] sources are rendered here on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from pointmap.train.config import ModelSection, load_config
from pointmap.train.trainer import Trainer


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
    # The trainer builds its training stream too; the evaluation sources stand in for it (nothing is drawn).
    data = dataclasses.replace(config.data, train=on_cpu, eval=on_cpu, num_workers=0, prefetch=0)
    config = dataclasses.replace(config, data=data, model=ModelSection(init="weights", weights=args.model),
                                 optim=dataclasses.replace(config.optim, amp="none"))
    with tempfile.TemporaryDirectory() as out:
        losses = Trainer(config, Path(out) / "run", verbose=False).evaluate()
    print(f"{args.model}: held-out regression loss {losses['regr']:.4f}, loss {losses['loss']:.4f} "
          f"({args.config}'s evaluation pairs, CPU, fp32)")


if __name__ == "__main__":
    main()
