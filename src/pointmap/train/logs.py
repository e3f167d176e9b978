"""Run metrics: a CSV file always, TensorBoard events when `torch.utils.tensorboard` can be imported."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from pointmap.io_utils import atomic_write_text

COLUMNS = ("step", "split", "loss", "regr", "lr", "grad_norm", "pairs_per_s", "data_share", "elapsed_s")


class MetricsLog:
    """Append metrics rows to `run_dir/metrics.csv` (and TensorBoard under `run_dir/tensorboard`).

    Args:
        run_dir: the run folder.
        resume_step: rows of later steps (written before a kill, after the checkpoint being resumed)
            are dropped, so the file never holds two rows of one step and split.
        tensorboard: also write TensorBoard events if the package is installed.
    """

    def __init__(self, run_dir: Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self._truncate(resume_step)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: the CSV holds the same numbers
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step + 1)

    def _truncate(self, resume_step: int) -> None:
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, table.getvalue())

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        """Append one row; absent columns stay empty."""
        row = {"step": step, "split": split}
        row.update({k: f"{v:.6g}" for k, v in values.items() if k in COLUMNS and not math.isnan(v)})
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n").writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics.csv as dicts (strings, as stored)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
