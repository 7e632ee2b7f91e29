"""Which store a process uses: MongoDB with MONGODB_URI, else one SQLite file under DATA_DIR."""

from app.chat import Turn, UsageRecord
from app.chat.sqlite import SqliteChatRecords
from app.config import Settings
from app.files import CleanupService
from app.files.sqlite import SqliteFileRepository
from app.wiring import Components


def settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **values)


async def test_without_mongodb_files_and_records_share_one_sqlite_file(tmp_path):
    parts = Components(settings(tmp_path))
    store = await parts.file_store()
    assert isinstance(store.repository, SqliteFileRepository)
    assert isinstance(parts.records, SqliteChatRecords)
    assert parts.store_description == f"SQLite ({tmp_path / 'data' / 'codeinterp.sqlite3'})"
    stored = await store.save("u1", "a.csv", b"a\n1\n", scope="guild:5")
    turn = Turn([{"role": "user", "content": "hi"}], id="t1", runs=[])
    await parts.records.save_turns("u1", "c1", [turn])
    await parts.records.record_usage(UsageRecord("u1", "gpt-4o", 10, 2, 0.1))
    await parts.close()

    again = Components(settings(tmp_path))  # a restart, or `files list` beside the bot
    store = await again.file_store()
    [kept] = await store.list("u1")
    assert kept.file_id == stored.file_id and kept.scope == "guild:5"
    assert await again.records.load_turns("u1", "c1") == [turn]
    assert await again.records.find_turn("u1", "c1", "t1") == turn
    assert (await again.records.usage_totals("u1"))[0].requests == 1
    await again.close()
    assert [p.name for p in (tmp_path / "data").iterdir() if p.is_file()] == ["codeinterp.sqlite3"]


async def test_cleanup_checks_stored_files_on_the_embedded_store(tmp_path):
    parts = Components(settings(tmp_path))
    store = await parts.file_store()
    stored = await store.save("u1", "a.csv", b"a\n1\n")
    store.absolute_path(stored).unlink()  # the file vanished from disk
    report = await CleanupService(store).run_once()  # the files pass; no Docker here
    assert report.missing_files == 1 and report.notes == []
    assert await store.list("u1") == []
    await parts.close()


def test_with_mongodb_the_description_names_the_database_without_the_uri(tmp_path):
    parts = Components(settings(tmp_path, mongodb_uri="mongodb://admin:pw@db:27017"))
    assert parts.store_description == "MongoDB (database codeinterp)"
    assert "database" not in parts.__dict__  # no SQLite file is made
