"""The repository contract: the in-memory, SQLite and MongoDB repositories behave the same.

MongoDB runs as mongomock-motor always, and as a real server when MONGODB_TEST_URI is set.
"""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.database import EmbeddedDatabase
from app.files import mongo
from app.files.repository import InMemoryFileRepository, RepositoryUnavailable, StoredFile
from app.files.sqlite import SqliteFileRepository

T0 = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)


def record(file_id, user="u1", at=T0, expires=None, **extra) -> StoredFile:
    values = dict(
        file_id=file_id,
        user_id=user,
        name=f"{file_id}.csv",
        type="csv",
        category="tabular",
        size=10,
        sha256="0" * 64,
        path=f"users/{user}/{file_id}.csv",
        source="upload",
        uploaded_at=at,
        expires_at=expires,
    )
    values.update(extra)
    return StoredFile(**values)


@pytest.fixture(params=["memory", "sqlite", "mongomock", "mongodb"])
async def repository(request, tmp_path):
    if request.param == "memory":
        yield InMemoryFileRepository()
        return
    if request.param == "sqlite":
        database = EmbeddedDatabase(tmp_path / "store.sqlite3")
        repo = SqliteFileRepository(database)
        await repo.ensure_ready()
        yield repo
        await database.close()
        return
    if request.param == "mongomock":
        repo = mongo.MongoFileRepository(AsyncMongoMockClient(tz_aware=True)["test"])
    else:
        uri = os.environ.get("MONGODB_TEST_URI")
        if not uri:
            pytest.skip("MONGODB_TEST_URI is not set: no real MongoDB to test against")
        repo = mongo.connect(uri, f"codeinterp_test_{uuid.uuid4().hex[:8]}")
    await repo.ensure_ready()
    yield repo
    if request.param == "mongodb":
        await repo._files.database.client.drop_database(repo._files.database.name)
    await repo.close()


async def test_insert_get_roundtrip_keeps_every_field(repository):
    stored = record("a1", expires=T0 + timedelta(hours=48))
    await repository.insert(stored)
    assert await repository.get("u1", "a1") == stored
    assert (await repository.get("u1", "a1")).uploaded_at.tzinfo is not None


async def test_the_scope_is_kept(repository):
    await repository.insert(record("g1", scope="guild:42"))
    await repository.insert(record("d1"))
    assert (await repository.get("u1", "g1")).scope == "guild:42"
    assert (await repository.get("u1", "d1")).scope == "dm"
    assert {s.scope for s in await repository.list_user("u1")} == {"guild:42", "dm"}


async def test_get_is_scoped_to_the_owner(repository):
    await repository.insert(record("a1", user="u1"))
    assert await repository.get("u2", "a1") is None
    assert await repository.get("u1", "nope") is None


async def test_duplicate_file_id_is_refused(repository):
    await repository.insert(record("a1"))
    with pytest.raises(Exception):
        await repository.insert(record("a1", user="u2"))
    assert (await repository.get("u1", "a1")).user_id == "u1"


async def test_list_user_is_newest_first_and_per_user(repository):
    for i, file_id in enumerate(["old", "mid", "new"]):
        await repository.insert(record(file_id, at=T0 + timedelta(seconds=i)))
    await repository.insert(record("other", user="u2"))
    assert [s.file_id for s in await repository.list_user("u1")] == ["new", "mid", "old"]
    assert [s.file_id for s in await repository.list_user("u2")] == ["other"]
    assert await repository.list_user("nobody") == []


async def test_delete_reports_whether_something_was_removed(repository):
    await repository.insert(record("a1"))
    assert await repository.delete("a1") is True
    assert await repository.delete("a1") is False
    assert await repository.get("u1", "a1") is None


async def test_expired_uses_expires_at_and_skips_permanent_files(repository):
    await repository.insert(record("gone", expires=T0 + timedelta(hours=1)))
    await repository.insert(record("later", expires=T0 + timedelta(hours=5)))
    await repository.insert(record("forever", expires=None))
    found = await repository.expired(T0 + timedelta(hours=2))
    assert [s.file_id for s in found] == ["gone"]
    assert await repository.expired(T0) == []


async def test_all_files_lists_every_user(repository):
    await repository.insert(record("a", user="u1"))
    await repository.insert(record("b", user="u2"))
    assert sorted(s.file_id for s in await repository.all_files()) == ["a", "b"]


async def test_ensure_ready_is_idempotent(repository):
    await repository.ensure_ready()
    await repository.ensure_ready()
    await repository.insert(record("a"))
    assert len(await repository.all_files()) == 1


async def test_unreachable_mongodb_is_a_clear_error():
    repo = mongo.connect("mongodb://127.0.0.1:9/?directConnection=true", "x", timeout_ms=300)
    try:
        with pytest.raises(RepositoryUnavailable, match="MongoDB is unreachable"):
            await repo.insert(record("a"))
        with pytest.raises(RepositoryUnavailable, match="MongoDB is unreachable"):
            await repo.ensure_ready()
    finally:
        await repo.close()


async def test_mongo_documents_have_the_documented_shape():
    database = AsyncMongoMockClient(tz_aware=True)["test"]
    repo = mongo.MongoFileRepository(database)
    await repo.ensure_ready()
    await repo.insert(record("a1", expires=None))
    document = await database["files"].find_one({"file_id": "a1"})
    assert set(document) == {
        "_id",
        "file_id",
        "user_id",
        "name",
        "type",
        "category",
        "size",
        "sha256",
        "path",
        "source",
        "scope",
        "uploaded_at",
        "expires_at",
    }
    assert document["expires_at"] is None and document["path"] == "users/u1/a1.csv"
    indexes = await database["files"].index_information()
    assert indexes["file_id_unique"]["unique"] is True
    assert indexes["user_uploaded"]["key"] == [("user_id", 1), ("uploaded_at", -1)]


async def test_a_mongo_document_from_before_scopes_is_private():
    database = AsyncMongoMockClient(tz_aware=True)["test"]
    repo = mongo.MongoFileRepository(database)
    document = {"_id": "old", **{k: v for k, v in mongo._to_document(record("old")).items()}}
    del document["scope"]
    await database["files"].insert_one(document)
    assert (await repo.get("u1", "old")).scope == "dm"


async def test_the_sqlite_file_survives_a_reopen_and_is_private(tmp_path):
    path = tmp_path / "data" / "codeinterp.sqlite3"
    first = EmbeddedDatabase(path)
    await SqliteFileRepository(first).insert(record("a1", expires=T0 + timedelta(hours=1)))
    await first.close()
    assert path.stat().st_mode & 0o777 == 0o600  # conversations live here too
    second = EmbeddedDatabase(path)
    assert (await SqliteFileRepository(second).get("u1", "a1")) == record(
        "a1", expires=T0 + timedelta(hours=1)
    )
    await second.close()


async def test_an_unusable_sqlite_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    database = EmbeddedDatabase(blocker / "codeinterp.sqlite3")
    try:
        with pytest.raises(RepositoryUnavailable, match="cannot be used.*DATA_DIR"):
            await SqliteFileRepository(database).ensure_ready()
    finally:
        await database.close()
