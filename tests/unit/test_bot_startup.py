"""`python -m app bot` refuses to start with one readable line per missing piece."""

import os
import subprocess
import sys
from pathlib import Path

from app.bot.client import heartbeat_is_fresh

ROOT = Path(__file__).resolve().parents[2]


def start_bot(tmp_path, **env) -> subprocess.CompletedProcess:
    """`python -m app bot` with nothing it needs configured, plus `env`."""
    base = {
        "PATH": os.environ["PATH"],
        "DISCORD_TOKEN": "",
        "OPENAI_API_KEY": "",
        "MONGODB_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "DATA_DIR": str(tmp_path),
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


def test_startup_names_every_missing_piece_in_one_line_each(tmp_path):
    done = start_bot(tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2
    assert all(line.startswith("cannot start: ") for line in lines), done.stderr
    text = done.stderr
    assert "DISCORD_TOKEN is not set" in text
    assert "OPENAI_API_KEY is not set" in text
    assert "MongoDB: MongoDB unreachable" in text and "127.0.0.1:9" not in text
    assert "cannot reach the Docker engine" in text
    assert "Traceback" not in text


def test_healthcheck_reads_the_heartbeat(tmp_path):
    beat = tmp_path / "alive"
    assert not heartbeat_is_fresh(beat)
    import time

    beat.write_text(str(time.time()))
    assert heartbeat_is_fresh(beat)
    beat.write_text(str(time.time() - 1000))
    assert not heartbeat_is_fresh(beat)


def test_with_a_sandbox_service_the_bot_needs_no_docker(tmp_path):
    done = start_bot(
        tmp_path, MONGODB_URI="", SANDBOX_SERVICE_URL=f"unix://{tmp_path}/not-yet.sock"
    )
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr
    # No engine is asked for, and a service that is not up yet is logged, not a reason to stop.
    problems = [line for line in done.stderr.splitlines() if line.startswith("cannot start")]
    assert not [line for line in problems if "Docker" in line or "sandbox" in line.lower()]
    assert "sandbox service unavailable at start" in done.stderr
    assert "Traceback" not in done.stderr
