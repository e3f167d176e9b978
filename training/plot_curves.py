"""Training curves of one or more runs' metrics.csv: training loss (smoothed) and held-out loss per step.

    python training/plot_curves.py training/bundled-224-chunk2 training/bundled-224-chunk2-real \
        --out training/bundled-224-chunk2/curves.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding metrics.csv")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()
    fig, (train_ax, eval_ax) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for run in args.runs:
        rows = read_rows(run)
        train = [(int(r["step"]), float(r["loss"])) for r in rows if r["split"] == "train"]
        held_out = [(int(r["step"]), float(r["regr"])) for r in rows if r["split"] == "eval"]
        if train:
            train_ax.plot(*zip(*train, strict=True), label=run.name)
        if held_out:
            eval_ax.plot(*zip(*held_out, strict=True), marker="o", label=run.name)
    train_ax.set(title="training loss (conf-weighted)", xlabel="step")
    eval_ax.set(title="held-out synthetic regression loss", xlabel="step")
    for ax in (train_ax, eval_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
