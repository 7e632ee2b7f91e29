"""EmbeddedDatabase: the SQLite file that stands in for MongoDB when MONGODB_URI is not set.

One file under DATA_DIR (app/layout.py names it) holds file metadata, conversations, model
choices, usage and budgets; the repositories next to the MongoDB ones (app/files/sqlite.py,
app/chat/sqlite.py) use it. sqlite3 blocks, so every statement runs on one worker thread and the
event loop only awaits it. Each call is one transaction opened with BEGIN IMMEDIATE: the write
lock is taken first, so a read-check-write (a budget reservation) is atomic against this process
and any other one using the same file (`cleanup` next to the bot).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 10.0
FILE_MODE = 0o600  # conversations live here: only the bot's uid reads it

# Each entry upgrades the schema by one version (PRAGMA user_version); never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE files (
        file_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        category TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        path TEXT NOT NULL,
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        uploaded_at TEXT NOT NULL,
        expires_at TEXT
    );
    CREATE INDEX files_user_uploaded ON files (user_id, uploaded_at DESC, file_id DESC);
    CREATE INDEX files_expires_at ON files (expires_at);
    CREATE TABLE conversations (
        user_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        turns TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_id, channel_id)
    );
    CREATE TABLE preferences (user_id TEXT PRIMARY KEY, model TEXT);
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        cost REAL,
        at TEXT NOT NULL
    );
    CREATE INDEX usage_user_model ON usage (user_id, model);
    CREATE TABLE daily_usage (
        user_id TEXT NOT NULL,
        day TEXT NOT NULL,
        tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, day)
    );
    """,
)


class DatabaseUnavailable(Exception):
    """The database file cannot be used; str() says why and which file, in one line."""


class EmbeddedDatabase:
    description = "SQLite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` as one transaction on the database thread; its result."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    async def ensure_ready(self) -> None:
        await self.run(lambda connection: None)

    async def close(self) -> None:
        """Close the connection; a later call opens it again."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close)
        executor.shutdown(wait=False)

    # On the database thread

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                connection = self._connect()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = work(connection)
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
                return result
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(
                    f"the database file {self.path} cannot be used ({exc}); check that DATA_DIR "
                    "is writable by the bot's user and the disk is not full"
                ) from None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot create it: {exc.strerror}") from None
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE above)
            check_same_thread=False,  # one worker thread, but not the one that made the object
        )
        try:
            _use_wal(connection)
            connection.execute("PRAGMA foreign_keys=ON")
            _migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _use_wal(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL. Another process opening the same new file at the same moment makes
    SQLite answer "database is locked" at once, without the busy timeout: try again until it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise sqlite3.OperationalError(
                f"schema version {version} is newer than this program knows ({len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
