"""The metadata of stored files behind a small interface, and its in-memory implementation.

FileStore talks only to FileRepository. MongoFileRepository (app/files/mongo.py, the one module
that imports motor) keeps the metadata in MongoDB, SqliteFileRepository (app/files/sqlite.py) in
the embedded database file; InMemoryFileRepository keeps it for the life of the process (`run`
and `chat` without MONGODB_URI, and tests). All pass tests/unit/test_file_repository.py.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from datetime import datetime

from app.files.scopes import PRIVATE


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    user_id: str
    name: str
    """Display name, made safe with app.filenames.safe_filename."""
    type: str
    category: str
    size: int
    sha256: str
    path: str
    """Relative to DATA_DIR: users/<user_id>/<file_id>.<ext>."""
    source: str
    """"upload" or "generated"."""
    uploaded_at: datetime
    """UTC."""
    expires_at: datetime | None
    """UTC; None when the file never expires."""
    scope: str = PRIVATE
    """Where the file was shared, so where it may be used (app/files/scopes.py): "dm" (the
    user's DMs, the terminal), or "guild:<id>"."""

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class RepositoryUnavailable(Exception):
    """The metadata store cannot be reached; str() says which and why, without secrets."""


class FileRepository(abc.ABC):
    """Metadata of stored files. Every method raises RepositoryUnavailable when the store is
    down."""

    description: str = ""
    """A short phrase for users: where metadata is kept ("MongoDB", "memory (not kept)")."""
    persistent: bool = True
    """False when the metadata disappears with the process."""

    @abc.abstractmethod
    async def ensure_ready(self) -> None:
        """Check the store answers and create its indexes (idempotent)."""

    @abc.abstractmethod
    async def insert(self, stored: StoredFile) -> None:
        """Add one record; its file_id must be new."""

    @abc.abstractmethod
    async def get(self, user_id: str, file_id: str) -> StoredFile | None: ...

    @abc.abstractmethod
    async def list_user(self, user_id: str) -> list[StoredFile]:
        """All of a user's records, expired included, newest first."""

    @abc.abstractmethod
    async def delete(self, file_id: str) -> bool:
        """Remove one record; False when it was not there (already removed is not an error)."""

    @abc.abstractmethod
    async def expired(self, now: datetime) -> list[StoredFile]:
        """Every record whose expires_at is at or before `now`."""

    @abc.abstractmethod
    async def all_files(self) -> list[StoredFile]:
        """Every record (for the cleanup pass)."""

    async def close(self) -> None:
        return None


class InMemoryFileRepository(FileRepository):
    description = "memory (kept only while this process runs; set MONGODB_URI to keep it)"
    persistent = False

    def __init__(self) -> None:
        self._records: dict[str, StoredFile] = {}
        self._lock = asyncio.Lock()

    async def ensure_ready(self) -> None:
        return None

    async def insert(self, stored: StoredFile) -> None:
        async with self._lock:
            if stored.file_id in self._records:
                raise ValueError(f"duplicate file_id {stored.file_id}")
            self._records[stored.file_id] = stored

    async def get(self, user_id: str, file_id: str) -> StoredFile | None:
        stored = self._records.get(file_id)
        return stored if stored is not None and stored.user_id == user_id else None

    async def list_user(self, user_id: str) -> list[StoredFile]:
        mine = [s for s in self._records.values() if s.user_id == user_id]
        return sorted(mine, key=lambda s: (s.uploaded_at, s.file_id), reverse=True)

    async def delete(self, file_id: str) -> bool:
        async with self._lock:
            return self._records.pop(file_id, None) is not None

    async def expired(self, now: datetime) -> list[StoredFile]:
        return [s for s in self._records.values() if s.is_expired(now)]

    async def all_files(self) -> list[StoredFile]:
        return list(self._records.values())
