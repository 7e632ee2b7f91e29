"""File metadata in the embedded SQLite database (no MONGODB_URI): table `files`, one row per
file with the same fields as the MongoDB document; times are UTC ISO 8601 text, which sorts and
compares in time order."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from app.database import DatabaseUnavailable, EmbeddedDatabase
from app.files.repository import FileRepository, RepositoryUnavailable, StoredFile

COLUMNS = (
    "file_id, user_id, name, type, category, size, sha256, path, source, scope, uploaded_at, "
    "expires_at"
)


class SqliteFileRepository(FileRepository):
    persistent = True

    def __init__(self, database: EmbeddedDatabase) -> None:
        self.database = database
        self.description = f"SQLite ({database.path})"

    async def ensure_ready(self) -> None:
        await self._run(lambda db: None)

    async def insert(self, stored: StoredFile) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    f"INSERT INTO files ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _to_row(stored),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"duplicate file_id {stored.file_id}") from None

        await self._run(insert)

    async def get(self, user_id: str, file_id: str) -> StoredFile | None:
        rows = await self._select("WHERE file_id = ? AND user_id = ?", (file_id, user_id))
        return rows[0] if rows else None

    async def list_user(self, user_id: str) -> list[StoredFile]:
        return await self._select(
            "WHERE user_id = ? ORDER BY uploaded_at DESC, file_id DESC", (user_id,)
        )

    async def delete(self, file_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM files WHERE file_id = ?", (file_id,)).rowcount == 1

        return await self._run(delete)

    async def expired(self, now: datetime) -> list[StoredFile]:
        return await self._select("WHERE expires_at IS NOT NULL AND expires_at <= ?", (_text(now),))

    async def all_files(self) -> list[StoredFile]:
        return await self._select("", ())

    # close(): nothing; the database is shared with the chat records and closed by its owner.

    async def _select(self, where: str, parameters: tuple) -> list[StoredFile]:
        def select(db: sqlite3.Connection) -> list[StoredFile]:
            rows = db.execute(f"SELECT {COLUMNS} FROM files {where}", parameters).fetchall()
            return [_from_row(row) for row in rows]

        return await self._run(select)

    async def _run(self, work):
        try:
            return await self.database.run(work)
        except DatabaseUnavailable as exc:
            raise RepositoryUnavailable(str(exc)) from None


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _to_row(stored: StoredFile) -> tuple:
    return (
        stored.file_id,
        stored.user_id,
        stored.name,
        stored.type,
        stored.category,
        stored.size,
        stored.sha256,
        stored.path,
        stored.source,
        stored.scope,
        _text(stored.uploaded_at),
        None if stored.expires_at is None else _text(stored.expires_at),
    )


def _from_row(row: tuple) -> StoredFile:
    (file_id, user_id, name, type_, category, size, sha256, path, source, scope) = row[:10]
    uploaded_at, expires_at = row[10], row[11]
    return StoredFile(
        file_id=file_id,
        user_id=user_id,
        name=name,
        type=type_,
        category=category,
        size=int(size),
        sha256=sha256,
        path=path,
        source=source,
        uploaded_at=datetime.fromisoformat(uploaded_at),
        expires_at=None if expires_at is None else datetime.fromisoformat(expires_at),
        scope=scope,
    )
