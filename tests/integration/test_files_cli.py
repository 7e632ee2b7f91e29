"""`files`, `cleanup` and `run --attach/--user` as a user runs them, metadata in mongomock-motor.

The commands run in this process (main() with argv) so that one mongomock client can stand in for
the MongoDB server across commands; containers are real.
"""

import json
import os
import socket
import time
import uuid

import pytest
from mongomock_motor import AsyncMongoMockClient

from app import cli
from app.files import mongo
from app.sandbox.docker_engine import DockerEngine
from app.wiring import sandbox_policy


@pytest.fixture
def app_env(settings, monkeypatch, tmp_path):
    """Environment for main(): the suite's data dir and instance, and a shared fake MongoDB."""
    server = AsyncMongoMockClient(tz_aware=True)
    server.close = lambda: None  # one "server" for every command of a test
    monkeypatch.setattr(mongo, "AsyncIOMotorClient", lambda *args, **kwargs: server)
    data_dir = settings.data_dir / f"cli-{uuid.uuid4().hex[:6]}"
    for name, value in {
        "DATA_DIR": str(data_dir),
        "SANDBOX_INSTANCE": settings.sandbox_instance,
        "SANDBOX_IMAGE": settings.sandbox_image,
        "CODE_EXECUTION_TIMEOUT": "30",
        "MONGODB_URI": "mongodb://fake-server:27017",
        "MAX_FILES_PER_USER": "3",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return data_dir


def app(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_files_add_list_rm(app_env, capsys, tmp_path):
    (tmp_path / "sales.csv").write_text("month,total\n1,10\n")
    (tmp_path / "empty.txt").write_text("")
    code, out, err = app(
        capsys, "files", "add", "--user", "42", "sales.csv", "empty.txt", "missing.csv"
    )
    assert code == 1
    assert out.startswith("stored ") and "sales.csv  csv  17 bytes" in out
    assert "cannot add empty.txt: empty.txt is empty" in err
    assert "cannot add missing.csv: no such file" in err
    file_id = out.split()[1]

    code, out, _ = app(capsys, "files", "list", "--user", "42", "--json")
    [listed] = json.loads(out)
    assert code == 0 and listed["file_id"] == file_id and listed["name"] == "sales.csv"
    assert listed["source"] == "upload" and listed["expires_at"].startswith("20")

    code, out, _ = app(capsys, "files", "list", "--user", "42")
    assert out.splitlines()[0].split()[:5] == ["id", "name", "type", "size", "source"]

    assert app(capsys, "files", "rm", "--user", "7", file_id)[0] == 1  # not that user's
    code, out, _ = app(capsys, "files", "rm", "--user", "42", file_id)
    assert code == 0 and out == f"removed {file_id}\n"
    assert not any(app_env.joinpath("users", "42").iterdir())
    assert app(capsys, "files", "list", "--user", "42")[1] == "no files stored for user 42\n"


def test_files_commands_work_without_mongodb_on_the_embedded_store(
    app_env, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("MONGODB_URI", "")
    (tmp_path / "a.csv").write_text("a\n1\n")
    code, out, err = app(capsys, "files", "add", "--user", "42", "--scope", "guild:7", "a.csv")
    assert code == 0, err
    file_id = out.split()[1]
    assert app_env.joinpath("codeinterp.sqlite3").is_file()
    code, out, _ = app(capsys, "files", "list", "--user", "42", "--json")
    [listed] = json.loads(out)
    assert listed["file_id"] == file_id and listed["scope"] == "guild:7"
    with pytest.raises(SystemExit) as usage:
        app(capsys, "files", "add", "--user", "42", "--scope", "server", "a.csv")
    assert usage.value.code == 2 and "dm or guild:<server id>" in capsys.readouterr().err


def test_unreachable_mongodb_is_one_clear_line(app_env, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(mongo, "AsyncIOMotorClient", _real_client())
    monkeypatch.setattr(mongo, "SERVER_SELECTION_TIMEOUT_MS", 300)
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?directConnection=true")
    (tmp_path / "a.csv").write_text("a\n1\n")
    code, _, err = app(capsys, "files", "add", "--user", "42", "a.csv")
    assert code == 1 and "MongoDB is unreachable" in err and "Traceback" not in err
    assert not app_env.joinpath("users").exists() or not any(app_env.joinpath("users").rglob("*.*"))


def test_doctor_checks_mongodb(app_env, capsys, monkeypatch):
    code, out, _ = app(capsys, "doctor", "--no-probe")
    assert "ok    file metadata, conversations and usage: MongoDB (database codeinterp)" in out
    monkeypatch.setattr(mongo, "AsyncIOMotorClient", _real_client())
    monkeypatch.setattr(mongo, "SERVER_SELECTION_TIMEOUT_MS", 300)
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?directConnection=true")
    code, out, _ = app(capsys, "doctor", "--no-probe")
    assert (
        code == 1 and "FAIL  could not set up the files collection: MongoDB is unreachable" in out
    )


def _real_client():
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient


def test_run_user_sees_stored_files_and_outputs_are_stored(app_env, capsys, tmp_path):
    (tmp_path / "sales.csv").write_text("month,total\n1,10\n2,32\n")
    assert app(capsys, "files", "add", "--user", "42", "sales.csv")[0] == 0
    (tmp_path / "job.py").write_text(
        "df = load_file('sales.csv')\n"
        "df.to_csv('doubled.csv', index=False)\n"
        "print(df['total'].sum())\n"
    )
    code, out, err = app(capsys, "run", "job.py", "--user", "42", "--json", "--out", "res")
    assert code == 0, err
    data = json.loads(out)
    assert data["stdout"] == "42\n"
    [made] = data["files"]
    assert made["name"] == "doubled.csv" and made["file_id"]
    assert (tmp_path / "res" / "doubled.csv").is_file()

    code, out, _ = app(capsys, "files", "list", "--user", "42", "--json")
    by_name = {f["name"]: f for f in json.loads(out)}
    assert by_name["doubled.csv"]["source"] == "generated"
    assert by_name["doubled.csv"]["file_id"] == made["file_id"]


def test_run_attach_stores_for_the_user(app_env, capsys, tmp_path, monkeypatch):
    (tmp_path / "extra.json").write_text('[{"x": 5}]')
    (tmp_path / "a.py").write_text("print(load_file('extra.json')['x'].sum())\n")
    code, out, err = app(capsys, "run", "a.py", "--user", "42", "--attach", "extra.json")
    assert code == 0, err
    assert out == "5\n" and "MONGODB_URI is not set" not in err
    (tmp_path / "b.py").write_text("print([f.name for f in list_files()])\n")
    code, out, err = app(capsys, "run", "b.py", "--user", "42")
    assert out == "['extra.json']\n"


def test_run_attach_without_mongodb_keeps_the_file_in_the_embedded_store(
    app_env, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("MONGODB_URI", "")
    (tmp_path / "in.csv").write_text("a\n1\n2\n")
    (tmp_path / "a.py").write_text("print(load_file('in.csv')['a'].sum())\n")
    code, out, err = app(capsys, "run", "a.py", "--attach", "in.csv", "--user", "42")
    assert code == 0, err
    assert out == "3\n" and "in memory" not in err
    code, out, _ = app(capsys, "files", "list", "--user", "42", "--json")
    assert [f["name"] for f in json.loads(out)] == ["in.csv"]
    assert not any(app_env.joinpath("staging").glob("*"))


def test_run_attach_refuses_a_file_over_the_limit(app_env, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_FILE_SIZE_MB", "0.001")
    (tmp_path / "big.csv").write_text("a\n" + "1\n" * 1000)
    (tmp_path / "a.py").write_text("print(1)\n")
    code, _, err = app(capsys, "run", "a.py", "--attach", "big.csv")
    assert code == 2 and "big.csv is larger than the" in err and "Traceback" not in err


def test_cleanup_removes_orphans_and_leftover_containers(app_env, capsys, settings, tmp_path):
    (tmp_path / "a.csv").write_text("a\n1\n")
    assert app(capsys, "files", "add", "--user", "42", "a.csv")[0] == 0
    orphan = app_env / "users" / "42" / "deadbeef.csv"
    orphan.write_text("lost")
    old = time.time() - 7200
    os.utime(orphan, (old, old))

    engine = DockerEngine()
    policy = sandbox_policy(settings, owner=f"{socket.gethostname()}:999999:0")  # owner gone
    args = policy.container_args(run_id="leftover", user_id="42", input_dir=None)
    leftover = engine.create_and_start(args)
    try:
        code, out, _ = app(capsys, "cleanup", "--dry-run", "--json")
        report = json.loads(out)
        assert code == 0 and report["dry_run"] is True
        assert report["orphan_files"] == 1 and report["containers"] >= 1
        assert orphan.exists() and leftover in engine.list_containers(policy.ownership_filter())

        code, out, _ = app(capsys, "cleanup")
        assert code == 0 and "removed 1 files without metadata" in out
        assert not orphan.exists()
        assert leftover not in engine.list_containers(policy.ownership_filter())
        code, out, _ = app(capsys, "files", "list", "--user", "42", "--json")
        assert [f["name"] for f in json.loads(out)] == ["a.csv"]
    finally:
        engine.remove(leftover)
        engine.close()
