"""Atomic file writes: a temporary file in the target's folder, then `os.replace`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _read_umask() -> int:
    """The process's file-creation mask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import: setting the mask on every write would race with other threads creating files.
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on error it is removed.

    The temporary file lives in the same folder so that `os.replace` is a rename on one file system,
    never a copy: readers see either the old file or the complete new one.

    Example:
        with atomic_path("out/points.ply") as tmp:
            mesh.export(tmp)

    The suffix of `path` is kept, so writers that pick a format from the extension still work.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: folder does not exist; create it before writing {path.name}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    # mkstemp creates the file readable by its owner only; give it the mode a plain open() would.
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it replaces the folder `path`.

    For writers that fill a whole folder (pycolmap's `write_binary`): readers never see a folder with
    some files new and some old. An existing `path` is moved aside, the new folder renamed in, then
    the old one deleted.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: folder does not exist; create it before writing {path.name}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def prepare_output_dir(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create the output folder, refusing a non-empty one unless `overwrite`.

    Returns:
        The folder as a Path. With `overwrite`, existing files stay and are replaced one by one.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; pass another output folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out}: folder is not empty; pass overwrite=True (--overwrite) or another folder"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except PermissionError as err:
        raise PermissionError(
            f"{out}: cannot create the output folder ({err}); pick a writable place"
        ) from err
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"{out}: the output folder is not writable; pick a writable place")
    return out
