"""MongoDB metadata via motor: the only module that imports motor.

One document per file in the `files` collection, `_id` = file_id, with user_id, name, type,
category, size, sha256, path (relative to DATA_DIR), source, scope, uploaded_at and expires_at
(UTC datetimes; expires_at null when permanent). Documents written before scopes existed have no
scope and count as private ("dm"): such a file is used in a server only when named by id.
Indexes: (user_id, uploaded_at) for listings, file_id unique, expires_at for the cleanup pass.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError

from app.files.repository import FileRepository, RepositoryUnavailable, StoredFile
from app.files.scopes import PRIVATE

COLLECTION = "files"
SERVER_SELECTION_TIMEOUT_MS = 5000


def connect(uri: str, database: str, timeout_ms: int | None = None) -> MongoFileRepository:
    """A repository on a new client; nothing is contacted until the first call."""
    timeout_ms = timeout_ms or SERVER_SELECTION_TIMEOUT_MS
    client: AsyncIOMotorClient = AsyncIOMotorClient(
        uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
        uuidRepresentation="standard",
    )
    return MongoFileRepository(client[database], client=client)


class MongoFileRepository(FileRepository):
    description = "MongoDB"
    persistent = True

    def __init__(self, database, client=None) -> None:
        self._files = database[COLLECTION]
        self._client = client

    async def ensure_ready(self) -> None:
        async with _translated("set up the files collection"):
            await self._files.create_index(
                [("user_id", ASCENDING), ("uploaded_at", DESCENDING)], name="user_uploaded"
            )
            await self._files.create_index("file_id", unique=True, name="file_id_unique")
            await self._files.create_index("expires_at", name="expires_at")

    async def insert(self, stored: StoredFile) -> None:
        async with _translated("save the file's metadata"):
            await self._files.insert_one(_to_document(stored))

    async def get(self, user_id: str, file_id: str) -> StoredFile | None:
        async with _translated("read the file's metadata"):
            document = await self._files.find_one({"file_id": file_id, "user_id": user_id})
        return _from_document(document) if document else None

    async def list_user(self, user_id: str) -> list[StoredFile]:
        async with _translated("list the user's files"):
            cursor = self._files.find({"user_id": user_id}).sort(
                [("uploaded_at", DESCENDING), ("file_id", DESCENDING)]
            )
            return [_from_document(d) async for d in cursor]

    async def delete(self, file_id: str) -> bool:
        async with _translated("delete the file's metadata"):
            outcome = await self._files.delete_one({"file_id": file_id})
        return outcome.deleted_count == 1

    async def expired(self, now: datetime) -> list[StoredFile]:
        async with _translated("find expired files"):
            cursor = self._files.find({"expires_at": {"$ne": None, "$lte": now}})
            return [_from_document(d) async for d in cursor]

    async def all_files(self) -> list[StoredFile]:
        async with _translated("list stored files"):
            return [_from_document(d) async for d in self._files.find({})]

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()


class _translated:
    """Turns driver failures into RepositoryUnavailable with a sentence a user can act on."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, PyMongoError):
            return False
        if isinstance(exc, (ServerSelectionTimeoutError, ConnectionFailure)):
            reason = "MongoDB is unreachable (check MONGODB_URI and that the server is running)"
        else:
            reason = f"MongoDB refused it ({type(exc).__name__})"
        raise RepositoryUnavailable(f"could not {self.action}: {reason}") from exc


def _to_document(stored: StoredFile) -> dict:
    return {"_id": stored.file_id, **asdict(stored)}


def _utc(value: datetime | None) -> datetime | None:
    # BSON dates are UTC; a client without tz_aware returns naive datetimes.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _from_document(document: dict) -> StoredFile:
    return StoredFile(
        file_id=document["file_id"],
        user_id=document["user_id"],
        name=document["name"],
        type=document["type"],
        category=document["category"],
        size=int(document["size"]),
        sha256=document["sha256"],
        path=document["path"],
        source=document["source"],
        uploaded_at=_utc(document["uploaded_at"]) or datetime.now(UTC),
        expires_at=_utc(document.get("expires_at")),
        scope=document.get("scope") or PRIVATE,
    )
