"""FileStore: a user's files on disk under DATA_DIR/users/<user_id>/, metadata in a repository.

Folder names are app/layout.py's. Saving streams the bytes to DATA_DIR/incoming/ with a size
cap, then moves the finished file into the user's folder under a generated name and records its
metadata; if anything fails on the way the file is removed again, so there is never a partial
file, a file without metadata written by a finished save, or metadata without its file. Per-user
limits are enforced under a per-user lock.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import hashlib
import os
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from app import user_ids
from app.filenames import safe_filename
from app.files.repository import FileRepository, RepositoryUnavailable, StoredFile
from app.files.scopes import PRIVATE, is_valid_scope
from app.files.types import HEAD_BYTES, detect_type
from app.layout import USERS, DataLayout
from app.sizes import human_size
from app.user_ids import is_user_id

log = structlog.get_logger(__name__)

CHUNK_SIZE = 1024 * 1024
SOURCES = ("upload", "generated")
# The sandbox runs as another uid and reads the user's folder through a read-only bind mount;
# DATA_DIR itself is what keeps other local accounts out (see docs/files.md).
FILE_MODE = 0o644
DIR_MODE = 0o755

__all__ = [
    "FileEmpty",
    "FileStore",
    "FileStoreError",
    "FileTooLarge",
    "StorageUnavailable",
    "StoredFile",
]


class FileStoreError(Exception):
    """str(exc) is a short sentence that can be shown to the user as it is."""


class FileTooLarge(FileStoreError):
    pass


class FileEmpty(FileStoreError):
    pass


class StorageUnavailable(FileStoreError):
    """The metadata store (MongoDB) or the disk cannot be used right now."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class FileStore:
    def __init__(
        self,
        data_dir: Path,
        repository: FileRepository,
        *,
        max_file_bytes: int = 50 * 1024**2,
        max_files_per_user: int = 20,
        expiration_hours: float = 48,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.layout = DataLayout(Path(data_dir).resolve())
        self.data_dir = self.layout.root
        self.repository = repository
        self.max_file_bytes = max_file_bytes
        self.max_files_per_user = max_files_per_user
        self.expiration = None if expiration_hours < 0 else timedelta(hours=expiration_hours)
        self.clock = clock
        # One lock per user: concurrent saves of one user are serialised around the limit check.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._last_stamp: dict[str, datetime] = {}

    # Paths

    def user_dir(self, user_id: str) -> Path:
        return self.layout.users / _checked_user(user_id)

    def absolute_path(self, stored: StoredFile) -> Path:
        path = (self.data_dir / stored.path).resolve()
        if not path.is_relative_to(self.layout.users):
            raise FileStoreError("the stored path of this file is outside the data folder")
        return path

    @property
    def incoming_dir(self) -> Path:
        return self.layout.incoming

    # Saving

    async def save(
        self,
        user_id: str,
        filename: str,
        data,
        source: str = "upload",
        scope: str = PRIVATE,
    ) -> StoredFile:
        """Store bytes, a binary file object or an async iterator of byte chunks for a user,
        usable where `scope` says (app/files/scopes.py)."""
        user_dir = self.user_dir(user_id)
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")
        if not is_valid_scope(scope):
            raise ValueError(f"not a file scope: {scope!r}")
        name = safe_filename(filename)
        file_id = uuid.uuid4().hex[:16]
        partial = self.incoming_dir / f"{file_id}.part"
        try:
            await asyncio.to_thread(self.incoming_dir.mkdir, parents=True, exist_ok=True)
            size, digest, head = await self._receive(data, partial, name)
            if size == 0:
                raise FileEmpty(f"{name} is empty: there is nothing to store")
            file_type = detect_type(name, head)
            relative = f"{USERS}/{user_id}/{file_id}{file_type.extension}"
            async with self._user_lock(user_id):
                now = self._stamp(user_id)
                stored = StoredFile(
                    file_id=file_id,
                    user_id=user_id,
                    name=name,
                    type=file_type.type,
                    category=file_type.category,
                    size=size,
                    sha256=digest,
                    path=relative,
                    source=source,
                    uploaded_at=now,
                    expires_at=None if self.expiration is None else now + self.expiration,
                    scope=scope,
                )
                final = self.data_dir / relative
                await asyncio.to_thread(_make_readable_dir, user_dir)
                await asyncio.to_thread(os.replace, partial, final)
                try:
                    await self.repository.insert(stored)
                except BaseException:
                    _unlink(final)  # no file may stay without its metadata
                    raise
                try:
                    await self._enforce_limit(user_id, keep=file_id)
                except RepositoryUnavailable as exc:
                    # The file is stored; the next save or cleanup trims the excess.
                    log.warning("per-user limit not enforced", user_id=user_id, error=str(exc))
        except RepositoryUnavailable as exc:
            raise StorageUnavailable(f"{name} was not stored: {exc}") from None
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            why = "the disk is full" if full else exc.strerror
            message = f"{name} was not stored: the disk refused it ({why})"
            raise StorageUnavailable(message) from None
        finally:
            _unlink(partial)
        log.info(
            "file stored",
            user_id=user_id,
            file_id=file_id,
            type=stored.type,
            size=size,
            source=source,
        )
        return stored

    async def _receive(self, data, partial: Path, name: str) -> tuple[int, str, bytes]:
        """Stream `data` into `partial`, aborting past the size cap."""
        digest = hashlib.sha256()
        head = bytearray()
        size = 0
        fd = await asyncio.to_thread(
            os.open, partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE
        )
        try:
            os.fchmod(fd, FILE_MODE)  # whatever the umask: the sandbox's uid reads it
            async for chunk in _chunks(data):
                if not chunk:
                    continue
                size += len(chunk)
                if size > self.max_file_bytes:
                    raise FileTooLarge(
                        f"{name} is larger than the {human_size(self.max_file_bytes)} limit"
                    )
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                await asyncio.to_thread(_write_all, fd, chunk)
        finally:
            os.close(fd)
        return size, digest.hexdigest(), bytes(head)

    async def _enforce_limit(self, user_id: str, keep: str) -> None:
        """Remove the user's oldest files beyond the limit, never the one just saved."""
        files = await self.repository.list_user(user_id)  # newest first
        others = [f for f in files if f.file_id != keep]
        for victim in others[max(self.max_files_per_user - 1, 0) :]:
            await self.remove(victim)
            log.info(
                "oldest file removed for the per-user limit",
                user_id=user_id,
                file_id=victim.file_id,
            )

    # Reading

    async def list(self, user_id: str) -> list[StoredFile]:
        """The user's unexpired files, newest first."""
        _checked_user(user_id)
        now = self.clock()
        files = await self._repo(self.repository.list_user(user_id))
        return [f for f in files if not f.is_expired(now)]

    async def get(self, user_id: str, file_id: str) -> StoredFile | None:
        _checked_user(user_id)
        stored = await self._repo(self.repository.get(user_id, file_id))
        if stored is None or stored.is_expired(self.clock()):
            return None
        return stored

    # Deleting

    async def delete(self, user_id: str, file_id: str) -> bool:
        _checked_user(user_id)
        stored = await self._repo(self.repository.get(user_id, file_id))
        if stored is None:
            return False
        async with self._user_lock(user_id):
            return await self._repo(self.remove(stored))

    async def delete_all(self, user_id: str) -> int:
        _checked_user(user_id)
        async with self._user_lock(user_id):
            files = await self._repo(self.repository.list_user(user_id))
            removed = 0
            for stored in files:
                removed += await self._repo(self.remove(stored))
            return removed

    async def remove(self, stored: StoredFile) -> bool:
        """Remove a file by its record, metadata first (used by limits, delete and cleanup)."""
        # Metadata first: a crash in between leaves an orphan file, which cleanup removes, never
        # metadata pointing at nothing that a run would try to load.
        removed = await self.repository.delete(stored.file_id)
        with contextlib.suppress(FileStoreError):
            _unlink(self.absolute_path(stored))
        return removed

    # Runs

    async def readable_files(self, user_id: str) -> tuple[Path, builtins.list[StoredFile]]:
        """The user's folder, readable by the sandbox's uid, and the unexpired files in it."""
        folder = self.user_dir(user_id)
        await asyncio.to_thread(_make_readable_dir, folder)
        present = []
        for stored in await self.list(user_id):
            path = self.absolute_path(stored)
            if path.parent == folder and path.is_file():
                present.append(stored)  # else gone from disk: cleanup removes the metadata
        return folder, present

    # Internals

    def _user_lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock

    def _stamp(self, user_id: str) -> datetime:
        """Now, at MongoDB's millisecond precision, strictly after this user's previous save."""
        now = self.clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        last = self._last_stamp.get(user_id)
        if last is not None and now <= last:
            now = last + timedelta(milliseconds=1)
        self._last_stamp[user_id] = now
        return now

    @staticmethod
    async def _repo(awaitable):
        try:
            return await awaitable
        except RepositoryUnavailable as exc:
            raise StorageUnavailable(str(exc)) from None


def _checked_user(user_id: str) -> str:
    if not is_user_id(user_id):
        raise FileStoreError(user_ids.RULE)
    return user_id


async def _chunks(data) -> AsyncIterator[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
    elif hasattr(data, "__aiter__"):
        async for chunk in data:
            yield bytes(chunk)
    elif hasattr(data, "read"):
        while chunk := await asyncio.to_thread(data.read, CHUNK_SIZE):
            yield bytes(chunk)
    else:
        raise TypeError("data must be bytes, a binary file object or an async iterator of bytes")


def _make_readable_dir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(folder, DIR_MODE)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
