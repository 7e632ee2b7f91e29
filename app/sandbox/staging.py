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
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.starter import Sandbox

# Beside a warm container's staging folder: the folder its session snapshot is placed in.
SESSION_SUFFIX = "-session"
# A staging folder younger than this may belong to a container still being created elsewhere.
ORPHAN_GRACE = 120.0


def make_staging(root: Path, pool_id: str, with_state: bool) -> tuple[Path, Path | None]:
    """A warm container's input folder under `root` and, `with_state`, the folder beside it for
    its session's snapshot; both readable by the code's uid whatever the umask."""
    input_dir = root / pool_id
    state_dir = input_dir.with_name(pool_id + SESSION_SUFFIX) if with_state else None
    for folder in (input_dir, state_dir):
        if folder is not None:
            folder.mkdir(parents=True, mode=0o755)
            os.chmod(folder, 0o755)
    return input_dir, state_dir


def remove_staging(input_dir: Path) -> None:
    """A warm container's folders: its input folder and the session folder beside it."""
    shutil.rmtree(input_dir, ignore_errors=True)
    shutil.rmtree(input_dir.with_name(input_dir.name + SESSION_SUFFIX), ignore_errors=True)


def remove_orphans(root: Path, alive: Collection[str | None]) -> None:
    """Delete the folders under `root` of no container in `alive` (pool ids), older than the
    grace: a crashed process's."""
    now = time.time()
    for folder in root.iterdir():
        try:
            old = now - folder.lstat().st_mtime > ORPHAN_GRACE
        except OSError:
            continue
        if folder.name.removesuffix(SESSION_SUFFIX) not in alive and old:
            shutil.rmtree(folder, ignore_errors=True)


class StagingError(ValueError):
    """A request's file cannot be placed into a warm container's input folder."""


@dataclass
class WarmContainer(Sandbox):
    pool_id: str = ""
    package_root: Path | None = None
    """The package folder mounted whole (app/sandbox/packages), None without one."""
    waited_for: bool = False
    """Handed, the moment it was ready, to a run that found none ready and waited for it."""

    def serves(self, packages: dict[str, Path]) -> bool:
        """Whether these cached packages are visible here (all in the mounted package folder)."""
        root = self.package_root
        return all(root is not None and entry.parent == root for entry in packages.values())

    @property
    def input_dir(self) -> Path:
        assert self.staging is not None, "a warm container always has its staging folder"
        return self.staging

    @property
    def state_dir(self) -> Path:
        return self.input_dir.with_name(self.input_dir.name + SESSION_SUFFIX)

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
            self.place(source, filename)

    def place(self, source: Path, filename: str, folder: Path | None = None) -> None:
        """One regular file into the input folder (or `folder`): a hard link, or a copy across
        filesystems."""
        target = (folder or self.input_dir) / filename
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
