"""Write the weights on the line between two model folders (see pointmap.train.interpolate).

python training/interpolate_weights.py src/pointmap/assets/default_model runs/chunk8c-model 0.7 OUT
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pointmap.model.weights import load_model, save_model
from pointmap.train.interpolate import interpolate_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("start", type=Path, help="model folder (config.json + model.safetensors) at weight 0")
    parser.add_argument("end", type=Path, help="model folder at weight 1, same configuration")
    parser.add_argument("weight", type=float, help="where on the line, in [0, 1]")
    parser.add_argument("out", type=Path, help="folder to write, float16 like the bundled model")
    args = parser.parse_args()
    start, end = load_model(args.start), load_model(args.end)  # float32
    mixed = interpolate_models(start, end, args.weight).to(torch.float16)
    print(save_model(mixed, args.out))


if __name__ == "__main__":
    main()
