"""`python -m app bot` refuses to start with one readable line per missing piece."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from app.bot.client import heartbeat_is_fresh
from app.bot.startup import socket_denied

ROOT = Path(__file__).resolve().parents[2]


def test_startup_names_every_missing_piece_in_one_line_each(tmp_path):
    done = _start(tmp_path, MONGODB_URI="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    # What is not a reason to stop is a log line (JSON); every problem is one line of its own.
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("{")]
    assert done.returncode == 2
    assert all(line.startswith("cannot start: ") for line in lines), done.stderr
    text = done.stderr
    assert "DISCORD_TOKEN is not set" in text
    assert "OPENAI_API_KEY is not set" in text
    assert "MongoDB: MongoDB unreachable" in text and "127.0.0.1:9" not in text
    # An engine that is not up is an outage, not a reason to stay down (runs say so meanwhile).
    assert not [line for line in lines if "Docker" in line]
    assert "Docker engine unavailable at start" in text
    assert "Traceback" not in text


def test_a_docker_socket_this_user_may_not_use_is_named_with_the_fix():
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        folder.chmod(0o755)
        sock = folder / "docker.sock"
        sock.touch(mode=0o600 if os.getuid() == 0 else 0o000)
        os.environ["DOCKER_HOST"] = f"unix://{sock}"
        said = _as_another_uid(socket_denied)
    finally:
        os.environ.pop("DOCKER_HOST")
        shutil.rmtree(folder)
    assert f"the Docker socket {sock} is not readable and writable by uid" in said
    assert "group" in said


def _as_another_uid(check) -> str:
    """`check()` in a child that is not root (as root any file is readable), as a bot user runs."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if os.getuid() == 0:
                os.setuid(65534)
            os.write(write, check().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        said = fh.read()
    os.waitpid(pid, 0)
    return said


def test_healthcheck_reads_the_heartbeat(tmp_path):
    beat = tmp_path / "alive"
    assert not heartbeat_is_fresh(beat)
    import time

    beat.write_text(str(time.time()))
    assert heartbeat_is_fresh(beat)
    beat.write_text(str(time.time() - 1000))
    assert not heartbeat_is_fresh(beat)


def _start(tmp_path, **env):
    base = {
        "PATH": os.environ["PATH"],
        "DISCORD_TOKEN": "",
        "OPENAI_API_KEY": "",
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "bot"],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_mongodb_the_bot_needs_only_a_writable_data_dir(tmp_path):
    done = _start(tmp_path)
    assert done.returncode == 2
    assert "MongoDB" not in done.stderr and "MONGODB_URI" not in done.stderr
    assert (tmp_path / "data" / "codeinterp.sqlite3").is_file()  # the embedded store opened


def test_an_unwritable_data_dir_is_named_with_the_fix(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    done = _start(tmp_path, DATA_DIR=str(tmp_path / "file" / "data"))
    lines = [line for line in done.stderr.splitlines() if "DATA_DIR" in line]
    assert len(lines) == 1 and lines[0].startswith("cannot start: DATA_DIR")
    assert f"chown -R {os.getuid()}:{os.getgid()}" in lines[0]
    assert "embedded database" not in done.stderr  # one problem, named once
    assert "Traceback" not in done.stderr


def test_a_folder_the_bot_cannot_write_is_named(tmp_path, monkeypatch):
    # The suite runs as root, who writes anywhere: the write probe is replaced for one folder,
    # as a root-made users/ looks to the bot's uid 10000.
    from app.bot import startup
    from app.config import Settings

    data = tmp_path / "data"
    (data / "users").mkdir(parents=True)
    settings = Settings(_env_file=None, data_dir=data, host_data_dir="/srv/ci/data")
    assert startup.data_dir_problem(settings) == ""
    monkeypatch.setattr(startup, "_writable", lambda folder: folder.name != "users")
    problem = startup.data_dir_problem(settings)
    assert problem.startswith(f"DATA_DIR folder {data / 'users'} is not writable by uid")
    assert "chown -R" in problem and "/srv/ci/data" in problem  # the host path, in compose


def test_with_a_sandbox_service_the_bot_needs_no_docker(tmp_path):
    done = _start(tmp_path, SANDBOX_SERVICE_URL=f"unix://{tmp_path}/not-yet.sock")
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr
    # No engine is asked for, and a service that is not up yet is logged, not a reason to stop.
    problems = [line for line in done.stderr.splitlines() if line.startswith("cannot start")]
    assert not [line for line in problems if "Docker" in line or "sandbox" in line.lower()]
    assert "sandbox service unavailable at start" in done.stderr
    assert "Traceback" not in done.stderr
