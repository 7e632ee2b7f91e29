"""FileStore on a real disk with mongomock-motor (and the in-memory repository) and a fake clock."""

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.chat.run_files import run_inputs, store_outputs
from app.files import (
    FileEmpty,
    FileStore,
    FileStoreError,
    FileTooLarge,
    InMemoryFileRepository,
    StorageUnavailable,
    mongo,
)
from app.files.repository import RepositoryUnavailable
from app.sandbox.result import OutputFile, RunResult, RunStatus


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["memory", "mongomock"])
async def repository(request):
    if request.param == "memory":
        return InMemoryFileRepository()
    repo = mongo.MongoFileRepository(AsyncMongoMockClient(tz_aware=True)["test"])
    await repo.ensure_ready()
    return repo


@pytest.fixture
def make_store(tmp_path, repository, clock):
    def make(**options):
        options.setdefault("max_file_bytes", 1024)
        options.setdefault("max_files_per_user", 3)
        options.setdefault("expiration_hours", 48)
        return FileStore(tmp_path / "data", repository, clock=clock, **options)

    return make


@pytest.fixture
def store(make_store):
    return make_store()


def files_on_disk(store, user="u1"):
    folder = store.user_dir(user)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_save_bytes_writes_the_file_and_its_metadata(store, clock):
    stored = await store.save("u1", "sales.csv", b"a,b\n1,2\n")
    assert (stored.name, stored.type, stored.category, stored.source) == (
        "sales.csv",
        "csv",
        "tabular",
        "upload",
    )
    assert stored.size == 8 and stored.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert stored.path == f"users/u1/{stored.file_id}.csv"
    assert store.absolute_path(stored).read_bytes() == b"a,b\n1,2\n"
    assert stored.uploaded_at == clock.now and stored.expires_at == clock.now + timedelta(hours=48)
    assert await store.get("u1", stored.file_id) == stored
    assert not any((store.data_dir / "incoming").iterdir())


async def test_save_accepts_file_objects_and_async_chunks(store):
    from_file = await store.save("u1", "a.txt", io.BytesIO(b"hello"))

    async def chunks():
        for part in (b"wor", b"", b"ld"):
            yield part

    from_stream = await store.save("u1", "b.txt", chunks())
    assert store.absolute_path(from_file).read_bytes() == b"hello"
    assert store.absolute_path(from_stream).read_bytes() == b"world"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "..",
        "/etc/shadow",
        "..\\..\\win.ini",
        "\uff0e\uff0e\uff0fsecret",
        "a/../../b.csv",
        "\u202eexe.csv",
        "zero\u200bwidth.csv",
        "x" * 1000 + ".csv",
        "",
        "\x00",
    ],
)
async def test_hostile_names_stay_inside_the_users_folder(store, hostile):
    stored = await store.save("u1", hostile, b"data")
    path = store.absolute_path(stored)
    assert path.parent == store.user_dir("u1")
    assert path.name == f"{stored.file_id}{path.suffix}"
    assert "/" not in stored.name and "\\" not in stored.name and ".." not in stored.name
    assert stored.name not in ("", ".")
    assert not any(ord(c) < 32 or c in "\u202e\u200b" for c in stored.name)
    assert len(stored.name) <= 120
    assert sorted(p.name for p in store.data_dir.rglob("*") if p.is_file()) == [path.name]


@pytest.mark.parametrize("user", ["../x", "a/b", "", ".", "x" * 65, "u\u00e9"])
async def test_hostile_user_ids_are_refused(store, user):
    with pytest.raises(FileStoreError):
        await store.save(user, "a.txt", b"x")
    assert not (store.data_dir / "users").exists() or not any((store.data_dir / "users").iterdir())


async def test_oversized_upload_is_refused_and_leaves_nothing(store):
    async def endless():
        while True:
            yield b"x" * 300

    with pytest.raises(FileTooLarge, match="1.0 KB limit|MB limit"):
        await store.save("u1", "big.bin", endless())
    with pytest.raises(FileTooLarge):
        await store.save("u1", "big.bin", b"x" * 1025)
    assert [p for p in store.data_dir.rglob("*") if p.is_file()] == []
    assert await store.list("u1") == []
    ok = await store.save("u1", "exact.bin", b"x" * 1024)
    assert ok.size == 1024


async def test_empty_upload_is_refused(store):
    with pytest.raises(FileEmpty, match="empty"):
        await store.save("u1", "nothing.csv", b"")
    assert [p for p in store.data_dir.rglob("*") if p.is_file()] == []


async def test_type_is_checked_against_magic_bytes(store):
    zipped = await store.save("u1", "data.csv", b"PK\x03\x04" + b"\x00" * 40)
    assert (zipped.type, zipped.category) == ("zip", "archive")
    assert zipped.path.endswith(".zip") and zipped.name == "data.csv"


async def test_list_is_newest_first_and_hides_expired_files(store, clock):
    first = await store.save("u1", "a.txt", b"1")
    clock.advance(hours=47)
    second = await store.save("u1", "b.txt", b"2")
    assert [f.file_id for f in await store.list("u1")] == [second.file_id, first.file_id]
    clock.advance(hours=1)
    assert [f.file_id for f in await store.list("u1")] == [second.file_id]
    assert await store.get("u1", first.file_id) is None
    assert await store.list("someone-else") == []


async def test_never_expiring_files(make_store, clock):
    store = make_store(expiration_hours=-1)
    stored = await store.save("u1", "a.txt", b"1")
    assert stored.expires_at is None
    clock.advance(days=3650)
    assert await store.get("u1", stored.file_id) == stored


async def test_limit_removes_the_oldest_file_disk_and_metadata(store, clock):
    saved = []
    for i in range(4):
        saved.append(await store.save("u1", f"f{i}.txt", b"x"))
        clock.advance(seconds=1)
    names = [f.name for f in await store.list("u1")]
    assert names == ["f3.txt", "f2.txt", "f1.txt"]
    assert not store.absolute_path(saved[0]).exists()
    assert len(files_on_disk(store)) == 3


async def test_ten_concurrent_uploads_never_exceed_the_limit_nor_remove_a_newer_file(store, clock):
    async def slow_chunks(i):
        for _ in range(3):
            await asyncio.sleep(0.001 * (i % 4))
            yield bytes([i])

    results = await asyncio.gather(
        *(store.save("u1", f"f{i}.bin", slow_chunks(i)) for i in range(10))
    )
    listed = await store.list("u1")
    assert len(listed) == 3 and len(files_on_disk(store)) == 3
    # The survivors are the three saved last, by the store's own ordering.
    newest = sorted(results, key=lambda s: s.uploaded_at)[-3:]
    assert {f.file_id for f in listed} == {f.file_id for f in newest}
    assert len({s.uploaded_at for s in results}) == 10  # strictly ordered even with a frozen clock


async def test_generated_outputs_are_stored_and_count_toward_the_limit(store, tmp_path):
    upload = await store.save("u1", "in.csv", b"a\n1\n")
    out = tmp_path / "out"
    out.mkdir()
    files = []
    for name, data in (("p1.png", b"\x89PNG\r\n\x1a\n...."), ("r.txt", b"ok"), ("e.txt", b"")):
        (out / name).write_bytes(data)
        files.append(OutputFile(name=name, size=len(data), path=out / name))
    result = RunResult(run_id="r1", status=RunStatus.OK, files=tuple(files))
    stored_result = await store_outputs(store, "u1", result)
    ids = [f.file_id for f in stored_result.files]
    assert ids[0] and ids[1] and ids[2] is None  # the empty file is not stored
    listed = await store.list("u1")
    assert [(f.name, f.source, f.type) for f in listed] == [
        ("r.txt", "generated", "text"),
        ("p1.png", "generated", "png"),
        ("in.csv", "upload", "csv"),
    ]
    await store.save("u1", "another.txt", b"x")
    assert upload.file_id not in {f.file_id for f in await store.list("u1")}


async def test_run_inputs_lists_the_users_files_for_the_runner(store):
    a = await store.save("u1", "sales.csv", b"a\n1\n")
    await store.save("u2", "secret.csv", b"s\n1\n")
    folder, files = await run_inputs(store, "u1")
    assert folder == store.user_dir("u1")
    assert [(f.file_id, f.name, f.filename, f.type, f.category) for f in files] == [
        (a.file_id, "sales.csv", f"{a.file_id}.csv", "csv", "tabular")
    ]
    assert sorted(p.name for p in folder.iterdir()) == [f"{a.file_id}.csv"]


async def test_delete_and_delete_all(store):
    a = await store.save("u1", "a.txt", b"1")
    b = await store.save("u1", "b.txt", b"2")
    other = await store.save("u2", "c.txt", b"3")
    assert await store.delete("u2", a.file_id) is False  # not theirs
    assert await store.delete("u1", a.file_id) is True
    assert await store.delete("u1", a.file_id) is False
    assert not store.absolute_path(a).exists() and store.absolute_path(b).exists()
    assert await store.delete_all("u1") == 1
    assert files_on_disk(store) == [] and await store.list("u1") == []
    assert store.absolute_path(other).exists()


class BrokenRepository(InMemoryFileRepository):
    async def insert(self, stored):
        raise RepositoryUnavailable("could not save the file's metadata: MongoDB is unreachable")


async def test_metadata_store_down_leaves_nothing_written(tmp_path):
    store = FileStore(tmp_path / "data", BrokenRepository())
    with pytest.raises(StorageUnavailable, match="MongoDB is unreachable"):
        await store.save("u1", "a.csv", b"a\n1\n")
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []


async def test_real_unreachable_mongodb_leaves_nothing_written(tmp_path):
    repo = mongo.connect("mongodb://127.0.0.1:9/?directConnection=true", "x", timeout_ms=300)
    store = FileStore(tmp_path / "data", repo)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        await store.save("u1", "a.csv", b"a\n1\n")
    with pytest.raises(StorageUnavailable, match="unreachable"):
        await store.list("u1")
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []
    await repo.close()
