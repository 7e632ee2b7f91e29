"""A warm container and the staging of a run's files into its input folder.

A warm container was created before its run was known, so its input mount is its own empty
folder (read-only inside); when a run takes it, the request's files are placed there from the host
side, by name: hard links when DATA_DIR is one filesystem, copies otherwise, never a link's target
or a special file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.starter import Sandbox


class StagingError(ValueError):
    """A request's file cannot be placed into a warm container's input folder."""


@dataclass
class WarmContainer(Sandbox):
    pool_id: str = ""
    package_root: Path | None = None
    """The package folder mounted whole (app/sandbox/packages), None without one."""

    def serves(self, packages: dict[str, Path]) -> bool:
        """Whether these cached packages are visible here (all in the mounted package folder)."""
        root = self.package_root
        return all(root is not None and entry.parent == root for entry in packages.values())

    @property
    def input_dir(self) -> Path:
        assert self.staging is not None, "a warm container always has its staging folder"
        return self.staging

    def stage(self, source_dir: Path, filenames: Iterable[str]) -> None:
        """Place the request's files into the (read-only mounted) input folder, by filename."""
        for filename in filenames:
            if not filename or "/" in filename or "\0" in filename or filename in (".", ".."):
                raise StagingError(f"unsafe input file name {filename!r}")
            source = source_dir / filename
            try:
                info = source.lstat()
            except FileNotFoundError:
                continue  # the code sees the same FileNotFoundError as in a cold run
            if not stat.S_ISREG(info.st_mode):
                continue  # never expose a link's target or a special file
            target = self.input_dir / filename
            try:
                os.link(source, target, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                _copy_no_follow(source, target)


def top_level_files(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _copy_no_follow(source: Path, target: Path) -> None:
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    os.chmod(target, 0o644)
