"""Synthetic data engine throughput: training pairs per second at 224x224 and 512x384.

    python benchmarks/synthetic_speed.py                       # CUDA if available, else CPU at small sizes
    python benchmarks/synthetic_speed.py --device cpu --sizes 64x64 --batch 4 --batches 2
    python benchmarks/synthetic_speed.py --profile-ops --sizes 16x16 --batch 64   # fixed cost per render call

Prints, per size: full pairs/s of SyntheticPairDataset.stream (scene building in worker processes, camera
sampling with overlap probes, rendering with shadows: what a training loop gets) and the share that the
same batches' setup alone (8x8 renders, in one process) would take of that time.

--profile-ops prints instead what one `render(job)` call costs besides pixel work: the aten ops it runs
(kernel launches on a GPU; views excluded), its host syncs (.cpu(), .item(), .tolist(), float(), nonzero,
boolean-mask indexing), its uploads (.to() of the job's CPU tensors; on a CPU, no-op .to() calls count too)
and its wall time. Ray casts count as
one op each: on a GPU they are one Triton kernel, on a CPU the torch reference path, whose own ops and
syncs are left out of the counts. With --compiled, so do the compiled functions (counted eagerly).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from pointmap.data.synthetic import SyntheticConfig, SyntheticPairDataset, primitives, textures
from pointmap.data.synthetic import render as render_module

_SYNC_METHODS = {"cpu", "item", "tolist", "nonzero", "__float__", "__int__", "__bool__", "numpy"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    size: tuple[int, int], device: torch.device, batch: int, batches: int, shadows: bool, compiled: bool,
    workers: int, group_by_kind: bool = True,
) -> dict[str, float]:
    """Pairs/s of `batches` batches of `batch` new items (new scenes), rendered with
    SyntheticPairDataset.stream (`workers` processes build the scenes), after one warm-up batch."""
    config = SyntheticConfig(shadows=shadows, compiled=compiled, group_by_kind=group_by_kind)
    dataset = SyntheticPairDataset(config, "train", size, device=device)
    dataset.render_batch(list(range(batch)))  # warm-up: kernels, compiles
    # The clock starts when the first streamed batch is out (workers started and filled their queue).
    stream = dataset.stream([range(b * batch, (b + 1) * batch) for b in range(1, batches + 2)], workers)
    next(stream)
    _sync(device)
    start = time.perf_counter()
    for items in stream:
        overlaps = torch.tensor([item[2] for item in items])
    _sync(device)
    elapsed = time.perf_counter() - start
    # The same items at 8x8 pixels: what is left is scene building and camera sampling.
    tiny = SyntheticPairDataset(config, "train", (8, 8), device=device)
    tiny.render_batch(list(range(batch)))
    _sync(device)
    start = time.perf_counter()
    for b in range(2, batches + 2):
        tiny.render_batch(list(range(b * batch, (b + 1) * batch)))
    _sync(device)
    setup = time.perf_counter() - start
    return {
        "pairs_per_s": batch * batches / elapsed,
        "setup_share": min(1.0, setup / elapsed),
        "median_overlap": overlaps.median().item(),
    }


class _OpCounter(TorchDispatchMode):
    """Counts aten ops that run a kernel (views and aliases excluded), except inside ray casts."""

    def __init__(self, casting: list[int]):
        super().__init__()
        self.casting, self.ops = casting, Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        returns = func._schema.returns
        view = any(r.alias_info is not None and not r.alias_info.is_write for r in returns)
        if not self.casting[0] and not view:
            self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


class _SyncCounter(TorchFunctionMode):
    """Counts calls that wait for the device on a GPU (copies to the host, scalars, nonzero, bool masks) and
    copies of the job's tensors to the device. Reads of the job's own (CPU) tensors are no syncs."""

    def __init__(self, casting: list[int], job_storages: set[int]):
        super().__init__()
        self.casting, self.job_storages = casting, job_storages
        self.syncs, self.uploads = Counter(), 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if not self.casting[0] and args and isinstance(args[0], torch.Tensor):
            from_job = args[0].untyped_storage().data_ptr() in self.job_storages
            if name == "to" and from_job:
                self.uploads += 1
            elif name in _SYNC_METHODS and not from_job:
                self.syncs[name] += 1
            elif name in ("__getitem__", "__setitem__") and _has_bool_index(args[1]):
                self.syncs[f"bool mask {name}"] += 1
        return func(*args, **(kwargs or {}))


def _storages(obj) -> set[int]:
    """Data pointers of every tensor storage in a (nested) job object."""
    if isinstance(obj, torch.Tensor):
        return {obj.untyped_storage().data_ptr()}
    if isinstance(obj, dict):
        obj = list(obj.values())
    elif hasattr(obj, "__dict__"):
        obj = list(vars(obj).values())
    if isinstance(obj, (list, tuple)):
        return set().union(*(_storages(item) for item in obj))
    return set()


def _has_bool_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


def _one_op(fn, name: str, casting: list[int], calls: Counter):
    """fn counted as one op named `name`, the ops inside it left out."""

    def counted(*args, **kwargs):
        if not casting[0]:
            calls[name] += 1
        casting[0] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            casting[0] -= 1

    return counted


@contextlib.contextmanager
def _as_one_op(casting: list[int], calls: Counter, fused: bool):
    """Ray casts (primitives.cast_rays, wherever it is imported) counted as one op each, their inside left out;
    with `fused`, so are the functions that SyntheticConfig.compiled compiles (run eagerly here: one compiled
    kernel each, roughly)."""
    modules = (primitives, render_module, textures)
    saved = [(m, name, getattr(m, name)) for m in modules for name in ("cast_rays", "maybe_fused") if hasattr(m, name)]
    primitives.cast_rays = render_module.cast_rays = _one_op(primitives.cast_rays, "cast_rays", casting, calls)
    if fused:
        for module in modules:
            module.maybe_fused = lambda fn, compiled: _one_op(fn, "fused", casting, calls) if compiled else fn
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


@contextlib.contextmanager
def _timed_casts():
    """Yields [seconds spent in ray casts so far] (synchronised on a GPU); casts wherever imported."""
    spent = [0.0]
    original = primitives.cast_rays

    def cast_rays(*args, **kwargs):
        origins = args[1] if len(args) > 1 else kwargs["origins"]
        _sync(origins.device)
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _sync(origins.device)
            spent[0] += time.perf_counter() - start

    primitives.cast_rays = render_module.cast_rays = cast_rays
    try:
        yield spent
    finally:
        primitives.cast_rays = render_module.cast_rays = original


def profile_ops(
    size: tuple[int, int], device: torch.device, batch: int, repeats: int = 3, config: SyntheticConfig | None = None
) -> dict:
    """Fixed cost of one SyntheticPairDataset.render(job) call of `batch` items (items 0..batch-1): ops
    (ray casts, and with config.compiled the compiled functions, as one op each), host syncs and the median
    wall time of `repeats` calls (after a warm-up)."""
    config = config or SyntheticConfig()
    dataset = SyntheticPairDataset(config, "train", size, device=device)
    job = dataset.prepare(list(range(batch)))
    dataset.render(job)
    times, outside_casts = [], []
    for timed_casts in [False] * repeats + [True] * repeats:  # timing the casts syncs the device: apart
        with _timed_casts() if timed_casts else contextlib.nullcontext([0.0]) as cast_time:
            _sync(device)
            start = time.perf_counter()
            dataset.render(job)
            _sync(device)
        elapsed = time.perf_counter() - start
        (outside_casts if timed_casts else times).append(elapsed - cast_time[0])
    casting, calls = [0], Counter()
    counters = _as_one_op(casting, calls, config.compiled), _OpCounter(casting), _SyncCounter(casting, _storages(job))
    with counters[0], counters[1] as ops, counters[2] as syncs:
        dataset.render(job)
    return {
        "ops": sum(ops.ops.values()) + calls.total(),
        "casts": calls["cast_rays"],
        "fused": calls["fused"],
        "syncs": sum(syncs.syncs.values()),
        "sync_kinds": dict(syncs.syncs),
        "uploads": syncs.uploads,
        "top_ops": ops.ops.most_common(8),
        "wall_ms": 1000 * statistics.median(times),
        "outside_casts_ms": 1000 * statistics.median(outside_casts),
        "groups": len(job.groups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        help="HxW sizes (rows x columns); default 224x224 384x512 (GPU) or 64x64 (CPU)",
    )
    parser.add_argument("--batch", type=int, default=None, help="items per render_batch; default 256 (GPU) or 4 (CPU)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--no-shadows", action="store_true")
    parser.add_argument("--compiled", action="store_true", help="torch.compile the texture patterns")
    parser.add_argument("--workers", type=int, default=None, help="scene-building processes; default 8 (GPU), 0 (CPU)")
    parser.add_argument(
        "--one-stack", action="store_true", help="SyntheticConfig.group_by_kind=False: all kinds in one stack"
    )
    parser.add_argument(
        "--profile-ops", action="store_true", help="print the ops, host syncs and wall time of one render(job) call"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    sizes = args.sizes or (["224x224", "384x512"] if gpu else ["64x64"])
    batch = args.batch or (256 if gpu else 4)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    workers = args.workers if args.workers is not None else (8 if gpu else 0)
    if args.profile_ops:
        config = SyntheticConfig(shadows=not args.no_shadows, compiled=args.compiled, group_by_kind=not args.one_stack)
        print(f"device: {name}; render(job) of {batch} items; shadows {config.shadows}; one stack {args.one_stack}")
        for text in sizes:
            height, width = (int(v) for v in text.lower().split("x"))
            result = profile_ops((height, width), device, batch, config=config)
            print(
                f"{width}x{height} (W x H): {result['ops']} ops ({result['casts']} ray casts, "
                f"{result['fused']} compiled functions), "
                f"{result['syncs']} host syncs, {result['uploads']} uploads of job tensors, "
                f"{result['wall_ms']:.1f} ms per call ({result['outside_casts_ms']:.1f} ms outside ray casts), "
                f"{result['groups']} kind groups"
            )
            print(f"  syncs: {result['sync_kinds']}")
            print(f"  most frequent ops: {result['top_ops']}")
        return
    print(f"device: {name}; batch {batch}; shadows {not args.no_shadows}; compiled {args.compiled}; workers {workers}")
    for text in sizes:
        height, width = (int(v) for v in text.lower().split("x"))
        result = measure(
            (height, width), device, batch, args.batches, not args.no_shadows, args.compiled, workers,
            group_by_kind=not args.one_stack,
        )
        print(
            f"{width}x{height} (W x H): {result['pairs_per_s']:.1f} pairs/s, in-process setup would take "
            f"{result['setup_share']:.0%} of that, "
            f"median overlap {result['median_overlap']:.2f}"
        )


if __name__ == "__main__":
    main()
