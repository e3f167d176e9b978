"""Benchmarks: metrics, the held-out synthetic set, public dataset runners, classical baselines, reports."""

from pointmap.eval.command import main, run_eval
from pointmap.eval.report import EvalResult

__all__ = ["EvalResult", "main", "run_eval"]
