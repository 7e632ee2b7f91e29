"""Uploads: hostile names become one safe component, sizes are capped, archives stay packed.

Uploads go through the real FileStore (what the bot, `files add` and `run --attach` use), with
in-memory metadata; a compressed bomb is stored byte for byte and opened only inside the sandbox.
"""

import gzip
import io
import os
import uuid
import zipfile

import pytest

from app.chat.run_files import run_inputs
from app.filenames import MAX_NAME_LENGTH, safe_filename, unique_name
from app.files import FileStoreError, FileTooLarge
from app.sandbox import RunStatus
from tests.fakes.file_store import memory_store

HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\config",
    "/etc/shadow",
    "C:\\boot.ini",
    "....//....//x.csv",
    "\uff0e\uff0e\uff0fsecret.txt",  # full-width ../
    "..\u2024\u2024/x",  # one-dot leaders
    "invoice\u202efdp.exe",  # right-to-left override: shows as invoiceexe.pdf
    "zero\u200bwidth\u2060.csv",
    "nul\x00byte.csv",
    "\x1b]8;;http://evil\x07link.csv",
    "@everyone.csv",
    ".bashrc",
    "..",
    ".",
    "",
    "   ",
    "CON",
    "a" * 1000 + ".csv",
    "\udcff\udcfe.bin",
    "caf\u0065\u0301.csv",  # decomposed: NFC makes it one character
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_upload_names_become_one_safe_component(name):
    safe = safe_filename(name)
    assert safe and len(safe) <= MAX_NAME_LENGTH
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe and "@" not in safe
    assert safe not in (".", "..") and not safe.startswith((".", " "))
    assert all(ch.isprintable() for ch in safe)
    assert os.path.basename(safe) == safe
    assert safe_filename(safe) == safe  # stable: sanitising twice changes nothing


def test_names_that_collide_after_cleaning_stay_distinct():
    taken: set[str] = set()
    names = []
    for raw in ("Report.csv", "report.csv", "re\u200bport.csv", "REPORT.CSV"):
        name = unique_name(safe_filename(raw), taken)
        taken.add(name)
        names.append(name)
    assert len({n.lower() for n in names}) == 4


async def test_the_store_never_writes_outside_the_users_folder(tmp_path):
    store = memory_store(tmp_path / "data")
    hostile = [
        "..\u2215..\u2215evil.csv",
        "../../../etc/cron.d/x.csv",
        "x\u202e.csv",
        "@everyone.txt",
        "\uff0e\uff0e\uff0fup.json",
        "a" * 200 + ".json",
    ]
    saved = [await store.save("victim", name, name.encode()) for name in hostile]
    user_dir = store.user_dir("victim").resolve()
    on_disk = sorted(p.name for p in user_dir.iterdir())
    assert on_disk == sorted(os.path.basename(f.path) for f in saved)
    for stored in saved:
        assert store.absolute_path(stored).parent == user_dir
        assert os.path.basename(stored.path).startswith(stored.file_id)  # generated, not chosen
        assert stored.name == safe_filename(stored.name) and "@" not in stored.name
        assert ".." not in stored.name and "/" not in stored.name
    everything = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert all(name.startswith("data/users/victim/") for name in everything)


async def test_an_upload_over_the_cap_leaves_nothing_behind(tmp_path):
    store = memory_store(tmp_path / "data", max_file_bytes=1024)

    async def stream():
        for _ in range(64):  # 64 KiB arriving in chunks, as a Discord attachment would
            yield b"x" * 1024

    with pytest.raises(FileTooLarge):
        await store.save("u", "big.csv", stream())
    assert await store.list("u") == []
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []


def _gzip_bomb() -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz:
        block = b"\0" * 2**20
        for _ in range(1024):  # 1 GiB of zeros, about 1 MiB compressed
            gz.write(block)
    return raw.getvalue()


def _zip_bomb() -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as member:
            block = b"\0" * 2**20
            for _ in range(1024):
                member.write(block)
    return raw.getvalue()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    (folder / "data.csv.gz").write_bytes(_gzip_bomb())
    (folder / "archive.zip").write_bytes(_zip_bomb())
    return folder


async def test_compressed_bombs_are_stored_as_is_and_only_opened_in_the_sandbox(
    attack, bombs, data_dir
):
    store = memory_store(data_dir)
    user = f"bomber-{uuid.uuid4().hex[:8]}"
    sources = [bombs / "data.csv.gz", bombs / "archive.zip"]
    for source in sources:
        with source.open("rb") as fh:
            await store.save(user, source.name, fh)
    input_dir, files = await run_inputs(store, user)
    staged = {f.name: input_dir / f.filename for f in files}
    for source in sources:  # the host stored bytes, it did not unpack anything
        assert staged[source.name].stat().st_size == source.stat().st_size < 4 * 2**20
    code = (
        "import gzip, zipfile, shutil, errno\n"
        "for opener in (lambda: gzip.open(get_file_path('data.csv.gz')),\n"
        "               lambda: zipfile.ZipFile(get_file_path('archive.zip')).open('zeros.bin')):\n"
        "    try:\n"
        "        with opener() as src, open('/tmp/unpacked', 'wb') as dst:\n"
        "            shutil.copyfileobj(src, dst, 2**20)\n"
        "        print('UNPACKED')\n"
        "    except OSError as e:\n"
        "        print('stopped', errno.errorcode.get(e.errno))\n"
    )
    result = await attack.run(code, timeout=20, input_dir=input_dir, files=files)
    assert result.stdout.split() == ["stopped", "ENOSPC", "stopped", "ENOSPC"], (
        result.status,
        result.stdout,
        result.stderr[-300:],
    )
    assert sorted(p.name for p in input_dir.iterdir()) == sorted(f.filename for f in files)
    assert sum(p.stat().st_size for p in input_dir.iterdir()) < 8 * 2**20


@pytest.mark.parametrize("user_id", ["alice\n", "alice\r\n", "\nalice", "al ice", "../alice"])
async def test_user_ids_are_checked_whole(attack, tmp_path, user_id):
    store = memory_store(tmp_path / "data")
    with pytest.raises(FileStoreError):
        await store.save(user_id, "a.csv", b"a\n1\n")
    result = await attack.runner.run(attack.make_request("print(1)", user_id=user_id))
    assert result.status is RunStatus.ERROR and "user id" in result.message
    assert result.setup_seconds == 0  # refused before any container existed
