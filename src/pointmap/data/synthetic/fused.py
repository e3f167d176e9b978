"""torch.compile'd versions of the engine's elementwise functions (opt-in: SyntheticConfig.compiled).

Shading is chains of dozens of elementwise operations over millions of hits: eager PyTorch runs one
kernel and one pass over memory per operation, a compiled function runs the chain as one kernel.
Shapes are dynamic (hit counts change with every pass), so one compile per function serves all calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch


@functools.cache
def _compiled(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=True)


def maybe_fused(fn: Callable, compiled: bool) -> Callable:
    """fn itself, or its compiled version (compiled once per process, on first use)."""
    return _compiled(fn) if compiled else fn
