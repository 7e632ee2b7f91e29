"""MongoDB going away mid-turn, and a full DATA_DIR: the answer is delivered, the user is told
what was not saved, uploads are refused clearly, and nothing is half-written (no file without its
metadata, no metadata without its file). The real chat service, file store, repositories and
sandbox; MongoDB is mongomock-motor behind an outage switch (tests/fakes/mongo_outage.py), the
full disk a 2 MiB tmpfs the test mounts.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from pymongo.errors import AutoReconnect

from app.chat import Upload
from app.chat.mongo import MongoChatRecords
from app.chat.outage import HISTORY_UNREAD, TURN_NOT_SAVED, USAGE_NOT_RECORDED
from app.chat.sqlite import SqliteChatRecords
from app.database import EmbeddedDatabase
from app.files import FileStore
from app.files.mongo import MongoFileRepository
from app.files.sqlite import SqliteFileRepository
from app.sandbox import RunStatus
from tests.fakes.mongo_outage import Outage
from tests.fakes.openai_server import reply, tool_call

pytestmark = pytest.mark.docker

MAKES_A_FILE = "open('report.txt', 'w').write('made')\nprint('done')\n"


@pytest.fixture
def outage():
    return Outage()


@pytest.fixture
def parts(outage, data_dir, tmp_path):
    database = outage.database()
    store = FileStore(tmp_path / "data", MongoFileRepository(database))
    return store, MongoChatRecords(database)


def consistent(store: FileStore, stored_ids: set[str]) -> None:
    """Every file on disk has its metadata and the reverse; nothing is left half-received."""
    users = store.data_dir / "users"
    on_disk = {p.stem for p in users.glob("*/*") if p.is_file()} if users.exists() else set()
    assert on_disk == stored_ids, (on_disk, stored_ids)
    incoming = store.data_dir / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


async def test_mongodb_lost_mid_turn_still_delivers_the_answer_and_says_what_was_not_saved(
    fake_openai, make_chat, runner, parts, outage, tmp_path
):
    store, records = parts
    service = make_chat(runner, store.data_dir, store=store, records=records)

    def first(body):
        outage.start(AutoReconnect)  # the server goes while the model answers
        return tool_call(MAKES_A_FILE)

    fake_openai.add(first, reply("Your report is ready."))
    answer = await service.turn("mongo-user", "c1", "make me a report")

    assert answer.error == ""
    assert answer.text == "Your report is ready."
    assert [run.result.status for run in answer.runs] == [RunStatus.OK]
    assert answer.runs[0].result.stdout == "done\n"
    assert TURN_NOT_SAVED in answer.notices
    assert USAGE_NOT_RECORDED in answer.notices
    (kept,) = [n for n in answer.notices if "report.txt" in n]
    assert "could not be kept" in kept and "MongoDB is unreachable" in kept
    assert outage.refused > 0
    outage.end()
    # Nothing half-written: the output that had no metadata is not on disk either.
    consistent(store, {f.file_id for f in await store.list("mongo-user")})
    assert await records.load_turns("mongo-user", "c1") == []
    assert not any((store.data_dir / "runs").glob("*"))
    # Back: the next turn works and is saved.
    fake_openai.add(reply("Hello again."))
    again = await service.turn("mongo-user", "c1", "hi")
    assert again.text == "Hello again." and again.notices == []
    assert len(await records.load_turns("mongo-user", "c1")) == 1


async def test_uploads_during_a_mongodb_outage_are_refused_clearly_and_leave_nothing(
    fake_openai, make_chat, runner, parts, outage
):
    store, records = parts
    service = make_chat(runner, store.data_dir, store=store, records=records)
    outage.start()
    fake_openai.add(reply("I cannot see a file."))
    answer = await service.turn(
        "mongo-up", "c1", "look at this", [Upload("sales.csv", b"month,total\n1,10\n")]
    )
    assert answer.text == "I cannot see a file."
    (refusal,) = [n for n in answer.notices if n.startswith("sales.csv:")]
    assert "sales.csv was not stored" in refusal and "MongoDB is unreachable" in refusal
    assert HISTORY_UNREAD in answer.notices and TURN_NOT_SAVED in answer.notices
    assert answer.stored_uploads == []
    outage.end()
    consistent(store, set())
    assert await store.list("mongo-up") == []


BIG_OUTPUT = "open('big.bin', 'wb').write(b'x' * 600_000)\nprint('wrote it')\n"


@pytest.fixture
def small_data_dir(data_dir):
    """A DATA_DIR on a 2 MiB tmpfs (mounted by the test, as root), under the suite's DATA_DIR
    so the sandbox may mount from it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = data_dir / f"small-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount)])
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


async def test_a_full_data_dir_refuses_uploads_and_outputs_clearly_and_recovers(
    fake_openai, make_chat, runner, small_data_dir
):
    database = EmbeddedDatabase(small_data_dir / "codeinterp.sqlite3")
    store = FileStore(small_data_dir, SqliteFileRepository(database))
    records = SqliteChatRecords(database)
    await store.repository.ensure_ready()
    service = make_chat(runner, small_data_dir, store=store, records=records)
    try:
        filler = small_data_dir / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk, then give back a few KiB
            while os.write(fd, b"\0" * 65536):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        os.truncate(filler, max(0, filler.stat().st_size - 64 * 1024))

        fake_openai.add(tool_call(BIG_OUTPUT), reply("Done, but the file was lost."))
        upload = Upload("big.csv", b"a,b\n" + b"1,2\n" * 100_000)
        answer = await service.turn("full-user", "c1", "make a big file", [upload])

        assert answer.error == "" and answer.text == "Done, but the file was lost."
        (refusal,) = [n for n in answer.notices if n.startswith("big.csv:")]
        assert "big.csv was not stored: the disk refused it (the disk is full)" in refusal
        (run,) = answer.runs
        assert run.result.status is RunStatus.OK and run.result.stdout == "wrote it\n"
        assert [(s.name, s.reason) for s in run.result.skipped] == [
            ("big.bin", "could not be saved (the disk is full)")
        ]
        assert answer.files == []
        consistent(store, {f.file_id for f in await store.list("full-user")})
        assert not any((small_data_dir / "runs").glob("*"))

        filler.unlink()  # space is back
        fake_openai.add(reply("Stored it."))
        again = await service.turn("full-user", "c1", "again", [upload])
        assert [f.name for f in again.stored_uploads] == ["big.csv"]
        assert not [n for n in again.notices if "disk" in n]
        consistent(store, {f.file_id for f in await store.list("full-user")})
    finally:
        await database.close()
