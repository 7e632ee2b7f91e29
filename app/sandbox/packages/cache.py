"""The package cache on disk: DATA_DIR/packages/<image key>/<distribution>/site.

One folder per image (keyed by the image's id, so a rebuilt image never sees packages built for
another), one entry per approved distribution. An entry appears only by an atomic rename of a
finished install, under a per-distribution lock (an in-process asyncio lock plus an flock for
other processes), so a run sees a complete entry or none, and concurrent installs of the same
package never write into the same folder. An entry's mtime is its last use; cleanup removes
entries unused for PACKAGE_CACHE_DAYS and the folders of other images.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOCKS = ".locks"
WORK = ".work"
IMAGE_MODULES = "image-modules.json"
META = "meta.json"
SITE = "site"
# An install work folder older than this belongs to a crashed install.
STALE_WORK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class CacheEntry:
    image_key: str
    distribution: str
    version: str
    packages: tuple[str, ...]
    size: int
    last_used: float
    path: Path


@dataclass
class CleanupReport:
    removed_entries: list[str] = field(default_factory=list)
    removed_images: list[str] = field(default_factory=list)
    removed_work: int = 0
    freed_bytes: int = 0
    kept_entries: int = 0
    note: str = ""


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class PackageCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def image_dir(self, image_key: str) -> Path:
        return self.root / image_key

    def entry_dir(self, image_key: str, dist: str) -> Path:
        return self.root / image_key / dist

    def mountable_image_dir(self, image_key: str) -> Path:
        """The image's folder, made if need be, open to the code's uid (a warm container mounts
        it whole); its install work and lock folders stay closed."""
        folder = self.image_dir(image_key)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        for private in (WORK, LOCKS):  # this process's alone: closed to every container
            (folder / private).mkdir(mode=0o700, exist_ok=True)
            (folder / private).chmod(0o700)
        return folder

    def has(self, image_key: str, dist: str) -> bool:
        return (self.entry_dir(image_key, dist) / META).is_file()

    def distributions(self, image_key: str) -> list[str]:
        """Every complete entry of an image's cache."""
        folder = self.image_dir(image_key)
        if not folder.is_dir():
            return []
        return sorted(
            p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / META).is_file()
        )

    def mark_used(self, image_key: str, dist: str) -> None:
        try:
            os.utime(self.entry_dir(image_key, dist))
        except OSError:
            pass  # cleaned up meanwhile: the run's fallback reinstalls it

    # Image module list (what the image has, so detection needs no container)

    def image_modules(self, image_key: str) -> set[str] | None:
        try:
            data = json.loads((self.image_dir(image_key) / IMAGE_MODULES).read_text())
            return set(data["modules"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store_image_modules(self, image_key: str, modules: list[str]) -> None:
        folder = self.image_dir(image_key)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{IMAGE_MODULES}.{uuid.uuid4().hex}"
        partial.write_text(json.dumps({"modules": sorted(modules)}))
        os.replace(partial, folder / IMAGE_MODULES)

    # Installing

    @asynccontextmanager
    async def locked(self, image_key: str, dist: str) -> AsyncIterator[None]:
        """Exclusive right to install `dist` for this image, across tasks and processes."""
        lock = self._locks.setdefault((image_key, dist), asyncio.Lock())
        async with lock:
            folder = self.image_dir(image_key) / LOCKS
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / f"{dist}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def new_work_dir(self, image_key: str, owner_uid: int | None) -> Path:
        """A fresh folder an install container may write to; nothing else is mounted writable."""
        folder = self.image_dir(image_key) / WORK / uuid.uuid4().hex
        folder.mkdir(parents=True, mode=0o700)
        if owner_uid is not None:
            os.chown(folder, owner_uid, owner_uid)
        return folder

    def commit(
        self, image_key: str, dist: str, work: Path, version: str, packages: list[str]
    ) -> None:
        """Publish a finished install: one rename, so runs see all of it or nothing."""
        entry_source = work / "entry"
        entry_source.mkdir(mode=0o755)
        os.rename(work / SITE, entry_source / SITE)
        meta = {
            "distribution": dist,
            "version": version,
            "packages": packages,
            "installed_at": time.time(),
        }
        (entry_source / META).write_text(json.dumps(meta))
        os.chmod(entry_source / META, 0o644)
        os.chmod(entry_source, 0o755)
        target = self.entry_dir(image_key, dist)
        try:
            os.rename(entry_source, target)
        except OSError:
            # An entry already there (installed by a process that ignored the lock): keep it.
            if not self.has(image_key, dist):
                raise

    @staticmethod
    def discard(work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)

    # Listing and cleanup

    def entries(self) -> list[CacheEntry]:
        found: list[CacheEntry] = []
        if not self.root.is_dir():
            return found
        for image in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for entry in sorted(
                p for p in image.iterdir() if p.is_dir() and not p.name.startswith(".")
            ):
                try:
                    meta = json.loads((entry / META).read_text())
                    last_used = entry.stat().st_mtime
                except (OSError, ValueError):
                    continue
                found.append(
                    CacheEntry(
                        image_key=image.name,
                        distribution=entry.name,
                        version=str(meta.get("version", "")),
                        packages=tuple(str(p) for p in meta.get("packages", [])),
                        size=_size(entry),
                        last_used=last_used,
                        path=entry,
                    )
                )
        return found

    def cleanup(
        self, current_key: str | None, max_age_days: float, now: float | None = None
    ) -> CleanupReport:
        """Remove entries unused for `max_age_days`, other images' caches, crashed installs.

        With `current_key` None (the image is unknown: engine down or image missing) no image's
        cache is removed as old, only unused entries.
        """
        now = time.time() if now is None else now
        report = CleanupReport()
        if not self.root.is_dir():
            return report
        if current_key is None:
            report.note = "the current image is unknown, so no other image's cache was removed"
        for image in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if current_key is not None and image.name != current_key:
                report.freed_bytes += _size(image)
                shutil.rmtree(image, ignore_errors=True)
                report.removed_images.append(image.name)
                continue
            for entry in sorted(image.iterdir()):
                if entry.name == WORK:
                    report.removed_work += self._remove_stale_work(entry, now, report)
                    continue
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                if now - entry.stat().st_mtime > max_age_days * 86400:
                    report.freed_bytes += self._retire(image, entry)
                    report.removed_entries.append(f"{image.name}/{entry.name}")
                else:
                    report.kept_entries += 1
        return report

    @staticmethod
    def _retire(image: Path, entry: Path) -> int:
        # Renamed out of the way first, so no run can pick up a half-deleted entry.
        size = _size(entry)
        trash = image / WORK / f"retired-{uuid.uuid4().hex}"
        trash.parent.mkdir(exist_ok=True)
        try:
            os.rename(entry, trash)
        except OSError:
            return 0
        shutil.rmtree(trash, ignore_errors=True)
        return size

    @staticmethod
    def _remove_stale_work(folder: Path, now: float, report: CleanupReport) -> int:
        removed = 0
        for work in folder.iterdir():
            try:
                stale = now - work.stat().st_mtime > STALE_WORK_SECONDS
            except OSError:
                continue
            if stale:
                report.freed_bytes += _size(work)
                shutil.rmtree(work, ignore_errors=True)
                removed += 1
        return removed
