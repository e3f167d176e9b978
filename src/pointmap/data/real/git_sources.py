"""Photo folders of public git repositories, read at a pinned commit (no checkout needed).

A folder of repositories holds, per `owner/name`, a bare mirror laid out as `<owner>+<name>/repo` (what a
mirroring tool writes) or a clone, `<owner>+<name>` or `<name>`. Used by data/prepare_real.py (training
scenes) and benchmarks/real_pictures.py (held-out sets).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def find_repository(repos: Path, repository: str) -> Path:
    """The git directory of `owner/name` under repos: a mirror, else a clone."""
    owner_name = repository.replace("/", "+")
    for candidate in (repos / owner_name / "repo", repos / owner_name, repos / repository.split("/")[1]):
        if (candidate / "HEAD").is_file() or (candidate / ".git").exists():
            return candidate
    raise FileNotFoundError(f"{repos}: no git repository of {repository}; fetch or clone it into {repos / owner_name}")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def list_folder(repo: Path, commit: str, path: str) -> list[str]:
    """File names in folder `path` of the tree at `commit`."""
    result = _git(repo, "ls-tree", "--name-only", f"{commit}:{path}")
    if result.returncode != 0:
        raise FileNotFoundError(f"{repo}: no folder {path} at {commit} ({result.stderr.decode().strip()})")
    return result.stdout.decode().splitlines()


def read_file(repo: Path, commit: str, path: str) -> bytes:
    """The bytes of file `path` at `commit`; FileNotFoundError when the repository lacks it (a mirror
    without that blob, or a wrong path)."""
    result = _git(repo, "cat-file", "blob", f"{commit}:{path}")
    if result.returncode != 0:
        raise FileNotFoundError(f"{repo}: no {path} at {commit} ({result.stderr.decode().strip()})")
    return result.stdout
