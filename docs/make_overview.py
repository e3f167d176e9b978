"""Draw docs/overview.png: the bundled example photos, their depth maps and the fused cloud with its cameras.

    python docs/make_overview.py                  # bundled model, CPU
    python docs/make_overview.py --model M --out overview.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import pointmap  # noqa: E402
from pointmap.render_png import render_scene  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SHOWN = (0, 2, 4)  # the photos drawn, with their depth maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "overview.png")
    args = parser.parse_args()

    scene = pointmap.reconstruct(EXAMPLES, model=args.model, verbose=False)
    cloud = render_scene(scene, "behind", width=640, height=640, point_size=2)  # (640, 640, 3) uint8
    model_name = args.model or "bundled model"
    figure, axes = plt.subplots(2, len(SHOWN) + 1, figsize=(13, 5))
    figure.suptitle(f"pointmap: {len(scene.views)} uncalibrated photos -> depth maps, camera poses and one "
                    f"point cloud ({model_name}, CPU)")
    for column, index in enumerate(SHOWN):
        axes[0, column].imshow(scene.colors[index].cpu().numpy())
        axes[0, column].set_title(f"photo {index}", fontsize=9)
        axes[1, column].imshow(scene.depths[index].detach().cpu().numpy(), cmap="turbo")
        axes[1, column].set_title(f"depth {index}", fontsize=9)
    cloud_axes = figure.add_subplot(1, len(SHOWN) + 1, len(SHOWN) + 1)
    cloud_axes.imshow(cloud)
    cloud_axes.set_title("fused points + cameras (first blue)", fontsize=9)
    for ax in [*axes.flat, cloud_axes]:
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
