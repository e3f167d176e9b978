"""Benchmark results on disk: results.json, a Markdown table (results.md) and PNG plots of error distributions."""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pointmap.io_utils import atomic_write_bytes, atomic_write_text


@dataclass(frozen=True)
class Plot:
    """A cumulative distribution of one record key per method, saved as `{key}.png`."""

    key: str
    """Record field plotted, e.g. "pose_err"."""
    label: str
    """x-axis label with the unit."""
    limit: float
    """Right end of the x axis; errors beyond it (and failures, inf) keep the curve below 1."""


@dataclass
class EvalResult:
    """What a benchmark run measured.

    Attributes:
        benchmark: its name, e.g. "synthetic" or "co3d".
        settings: the options it ran with (JSON-able).
        records: one dict per (method, item): "method", "item", "group" and the item's metrics.
        summary: one dict per table row: "method", "group" and the aggregated metrics.
        columns: summary keys shown in the Markdown table, in order.
        plots: the distributions to draw.
    """

    benchmark: str
    settings: dict
    records: list[dict]
    summary: list[dict]
    columns: tuple[str, ...]
    plots: tuple[Plot, ...] = field(default_factory=tuple)


def _json_value(value):
    """JSON has no NaN or infinity: NaN (no value) becomes null, infinities the strings "inf" / "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_value(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def to_json(result: EvalResult) -> str:
    """The result as strict JSON (NaN -> null, inf -> "inf")."""
    document = asdict(result)
    return json.dumps(_json_value(document), indent=1) + "\n"


def _cell(value) -> str:
    if isinstance(value, int):  # bool included
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def to_markdown(result: EvalResult) -> str:
    """The summary as a Markdown table: one row per (method, group); "-" where a method has no value."""
    header = ["method", "group", *result.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.summary:
        lines.append("| " + " | ".join(_cell(row.get(key, math.nan)) for key in header) + " |")
    return f"### {result.benchmark}\n\n" + "\n".join(lines) + "\n"


def plot_distribution(result: EvalResult, plot: Plot) -> bytes:
    """PNG bytes of the cumulative distribution of `plot.key`, one curve per method, over all its items."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(figsize=(5, 3.5), dpi=120)
    for method in dict.fromkeys(r["method"] for r in result.records):
        values = np.array([r[plot.key] for r in result.records if r["method"] == method], dtype=np.float64)
        if np.isnan(values).all():
            continue  # a method without this measurement (e.g. depth of a sparse baseline)
        values = np.where(np.isnan(values), np.inf, values)
        ordered = np.sort(values)
        fraction = np.arange(1, len(ordered) + 1) / len(ordered)
        shown = ordered <= plot.limit
        axes.step(np.concatenate([[0.0], ordered[shown], [plot.limit]]),
                  np.concatenate([[0.0], fraction[shown], [fraction[shown][-1] if shown.any() else 0.0]]),
                  where="post", label=method)
    axes.set_xlim(0, plot.limit)
    axes.set_ylim(0, 1)
    axes.set_xlabel(plot.label)
    axes.set_ylabel("fraction of items")
    axes.set_title(f"{result.benchmark}: {plot.key}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def save_result(result: EvalResult, out: str | Path) -> list[Path]:
    """Write results.json, results.md and one PNG per plot into `out` (created if needed), each atomically.

    The plots need matplotlib (`pip install matplotlib`); without it they are skipped with a warning.
    Returns:
        The files written.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "results.json", folder / "results.md"]
    atomic_write_text(written[0], to_json(result))
    atomic_write_text(written[1], to_markdown(result))
    if result.plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            warnings.warn("matplotlib is not installed, so no plots were drawn; pip install matplotlib", stacklevel=2)
            return written
        for plot in result.plots:
            path = folder / f"{plot.key}.png"
            atomic_write_bytes(path, plot_distribution(result, plot))
            written.append(path)
    return written
