"""The cleanup pass: expired files, metadata without a file, files without metadata, leftovers.

It sweeps every folder of DATA_DIR (app/layout.py): users/ and incoming/ against the metadata;
runs/, staging/ and tmp/, whose entries belong to one run or command, by age; the warm pool's
folders, leftover containers and the package cache through the sandbox (any object with the
`SandboxLeftovers` methods: the runner).

`CleanupService.run_once()` does one pass and returns what it removed (or would remove, with
dry_run). `CleanupService.run_periodically(minutes)` is what the bot starts as a background task
(every CLEANUP_INTERVAL_MINUTES); `python -m app cleanup` runs one pass by hand. A pass is
idempotent and safe to run twice at once, in one process or two: every removal tolerates the
thing being gone already, and files younger than the grace period are never touched as orphans,
so an upload in flight (its metadata not written yet) is never hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from app.files.repository import RepositoryUnavailable
from app.files.store import FileStore, StorageUnavailable
from app.layout import DataLayout

log = structlog.get_logger(__name__)

DEFAULT_GRACE_SECONDS = 3600.0
"""Orphans younger than this are left alone: longer than any upload or run takes."""


class SandboxLeftovers(Protocol):
    """What the cleanup pass asks of the sandbox side (implemented by SandboxRunner)."""

    async def reap_leftovers(self) -> int: ...

    async def count_leftovers(self) -> int: ...

    async def remove_orphaned_staging(self) -> None: ...

    async def remove_stale_packages(self, max_age_days: float) -> int | None:
        """How many cache entries were removed; None when there is no package cache."""
        ...

    async def remove_expired_sessions(self, max_age_seconds: float) -> int:
        """How many sessions' states, unused for `max_age_seconds`, were removed."""
        ...


@dataclass
class CleanupReport:
    expired: int = 0
    missing_files: int = 0
    """Metadata records removed because their file was gone from disk."""
    orphan_files: int = 0
    """Files on disk removed because no metadata names them (partial uploads included)."""
    staging: int = 0
    """Leftover folders of runs and commands removed (runs/, staging/, tmp/)."""
    containers: int = 0
    packages: int = 0
    """Cached packages (and caches of old images) removed from the auto-install cache."""
    sessions: int = 0
    """Session states unused for FILE_EXPIRATION_HOURS, removed."""
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "expired": self.expired,
            "missing_files": self.missing_files,
            "orphan_files": self.orphan_files,
            "staging": self.staging,
            "containers": self.containers,
            "packages": self.packages,
            "sessions": self.sessions,
        }


class CleanupService:
    """One object the bot keeps; `run_once` may be called from anywhere at any time."""

    def __init__(
        self,
        store: FileStore | None,
        sandbox: SandboxLeftovers | None = None,
        *,
        layout: DataLayout | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        wall_clock=time.time,
        package_cache_days: float = 7,
        session_hours: float = -1,
    ) -> None:
        """`store` None: a process without user files (the sandbox service), whose `layout` is
        swept for work folders only."""
        if layout is None:
            assert store is not None, "without a store, give the layout to sweep"
            layout = store.layout
        self.store = store
        self.layout = layout
        self.sandbox = sandbox
        self.package_cache_days = package_cache_days
        self.session_hours = session_hours
        """FILE_EXPIRATION_HOURS: a session's state unused this long goes (-1: never)."""
        self.grace_seconds = grace_seconds
        self.wall_clock = wall_clock

    async def run_once(self, dry_run: bool = False) -> CleanupReport:
        """One full pass. Raises StorageUnavailable when the metadata store cannot be read."""
        report = CleanupReport(dry_run=dry_run)
        if self.store is None:
            pass  # no user files here
        elif self.store.repository.persistent:
            try:
                await self._files_pass(report, dry_run)
            except RepositoryUnavailable as exc:
                raise StorageUnavailable(f"cleanup stopped: {exc}") from None
        else:
            report.notes.append(
                "file metadata is kept in memory by this process: stored files were not "
                "checked, since every file would look like an orphan"
            )
        report.staging = await asyncio.to_thread(self._old_work_folders, dry_run)
        if self.sandbox is not None:
            report.containers = await self._containers(dry_run)
            if not dry_run:
                await self.sandbox.remove_orphaned_staging()
            await self._packages(report, dry_run)
            if not dry_run and self.session_hours >= 0:
                report.sessions = await self.sandbox.remove_expired_sessions(
                    self.session_hours * 3600
                )
        log.info("cleanup pass finished", dry_run=dry_run, **report.counts())
        return report

    async def run_periodically(self, interval_minutes: float) -> None:
        """Run a pass now and then every `interval_minutes` until cancelled; never raises."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed pass must not stop the next one
                log.warning("cleanup pass failed", error=str(exc)[:300])
            await asyncio.sleep(interval_minutes * 60)

    # Passes

    async def _packages(self, report: CleanupReport, dry_run: bool) -> None:
        assert self.sandbox is not None
        if dry_run:
            report.notes.append("the package cache is not checked in a dry run")
            return
        removed = await self.sandbox.remove_stale_packages(self.package_cache_days)
        report.packages = removed or 0

    async def _files_pass(self, report: CleanupReport, dry_run: bool) -> None:
        store = self.store
        assert store is not None
        for stored in await store.repository.expired(store.clock()):
            report.expired += 1
            if not dry_run:
                await store.remove(stored)
        known: set[Path] = set()
        for stored in await store.repository.all_files():
            if stored.is_expired(store.clock()):
                continue  # counted above
            try:
                path = store.absolute_path(stored)
            except Exception:
                path = None
            if path is not None and path.is_file():
                known.add(path)
                continue
            report.missing_files += 1
            if not dry_run:
                await store.repository.delete(stored.file_id)
        report.orphan_files = await asyncio.to_thread(self._orphans, known, dry_run)

    def _orphans(self, known: set[Path], dry_run: bool) -> int:
        removed = 0
        users = self.layout.users
        candidates: list[Path] = []
        with contextlib.suppress(FileNotFoundError):
            for user_dir in users.iterdir():
                if user_dir.is_dir() and not user_dir.is_symlink():
                    candidates.extend(user_dir.iterdir())
        with contextlib.suppress(FileNotFoundError):
            candidates.extend(self.layout.incoming.iterdir())
        for path in candidates:
            if path in known or not self._old_enough(path):
                continue
            removed += 1
            if not dry_run:
                _remove_path(path)
        return removed

    def _old_work_folders(self, dry_run: bool) -> int:
        """Entries of runs/, staging/ and tmp/ older than any run: a crashed process's."""
        removed = 0
        for folder in self.layout.sweepable():
            with contextlib.suppress(FileNotFoundError):
                for path in folder.iterdir():
                    if self._old_enough(path):
                        removed += 1
                        if not dry_run:
                            _remove_path(path)
        return removed

    async def _containers(self, dry_run: bool) -> int:
        assert self.sandbox is not None
        if dry_run:
            return await self.sandbox.count_leftovers()
        return await self.sandbox.reap_leftovers()

    def _old_enough(self, path: Path) -> bool:
        try:
            modified = path.lstat().st_mtime
        except FileNotFoundError:
            return False
        return self.wall_clock() - modified >= self.grace_seconds


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
