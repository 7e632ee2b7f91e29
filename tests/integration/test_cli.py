"""`python -m app run` and `doctor` as a user runs them."""

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def cli(settings, tmp_path):
    base = {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "SANDBOX_INSTANCE": settings.sandbox_instance,
        "CODE_EXECUTION_TIMEOUT": "30",
    }

    def run(*args, stdin=None, env=None):
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            input=stdin,
            env={**base, **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_run_json_has_the_documented_keys(cli):
    proc = cli("run", "-", "--json", stdin="print('hi')")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in (
        "status",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "exec_seconds",
        "setup_seconds",
        "files",
        "skipped",
    ):
        assert key in data
    assert (data["status"], data["stdout"], data["exit_code"]) == ("ok", "hi\n", 0)


def test_run_with_attachment_writes_outputs_to_out(cli, tmp_path):
    (tmp_path / "sales data.csv").write_text("month,total\n1,10\n2,32\n")
    (tmp_path / "job.py").write_text(
        "df = load_file('sales data.csv')\n"
        "df.plot(x='month', y='total').figure.savefig('total.png')\n"
        "print(df['total'].max())\n"
    )
    proc = cli("run", "job.py", "--attach", "sales data.csv", "--out", "results", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["stdout"] == "32\n"
    [png] = data["files"]
    assert png["name"] == "total.png"
    assert png["path"] == str(tmp_path / "results" / "total.png")
    assert (tmp_path / "results" / "total.png").read_bytes()[:4] == b"\x89PNG"


def test_default_output_folder_is_new_and_under_the_current_directory(cli, tmp_path):
    proc = cli("run", "-", stdin="open('a.txt', 'w').write('x')")
    assert proc.returncode == 0
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("outputs-")]
    assert len(folders) == 1 and (folders[0] / "a.txt").read_text() == "x"
    assert f"file: {folders[0] / 'a.txt'}" in proc.stderr


def test_failures_and_timeouts_exit_1(cli):
    failed = cli("run", "-", stdin="raise ValueError('bad input')")
    assert failed.returncode == 1
    assert "ValueError: bad input" in failed.stderr and "[error] exit 1" in failed.stderr
    timed_out = cli("run", "-", "--timeout", "1", stdin="while True: pass")
    assert timed_out.returncode == 1 and "[timeout]" in timed_out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "missing.py"), "cannot read missing.py"),
        (("run", "-", "--attach", "nope.csv"), "cannot attach nope.csv"),
        (("run", "-", "--timeout", "-3"), "must be a positive number"),
        (("run", "-", "--timeout", "soon"), "not a number"),
        (("run", "-", "--session", "no spaces"), "a session name is"),
        (("run", "-", "--reset"), "--reset needs --session"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(cli, args, message):
    proc = cli(*args, stdin="print(1)")
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_passes_on_a_working_host(cli):
    proc = cli("doctor")
    assert proc.returncode == 0, proc.stdout
    assert "ok    Docker engine" in proc.stdout and "ok    test run" in proc.stdout
    assert "all checks passed" in proc.stdout


def test_doctor_names_the_fix_when_the_image_is_missing(cli, settings):
    env_image = "codeinterp-missing:nope"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "doctor"],
        env={**os.environ, "DATA_DIR": str(settings.data_dir), "SANDBOX_IMAGE": env_image},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert f"FAIL  sandbox image {env_image} is missing" in proc.stdout
    assert "python -m app image build" in proc.stdout


def test_run_session_keeps_names_across_commands_with_notes(cli, settings):
    """`run --session`: kept across separate commands; an unpicklable name, a name over the cap
    and a corrupt snapshot each give their note and an ok run."""
    name = f"cli-{os.getpid()}"
    first = cli(
        "run",
        "-",
        "--session",
        name,
        "--json",
        stdin=(
            "import sqlite3, numpy as np\n"
            "con = sqlite3.connect(':memory:')\n"
            "big = np.ones(600_000)\n"
            "kept = {'a': 1}\n"
        ),
        env={"SESSION_STATE_MAX_BYTES": "2m"},
    )
    data = json.loads(first.stdout)
    assert data["status"] == "ok"
    assert "not kept: con (sqlite3.Connection)" in data["state_notes"]
    assert any(note.startswith("not kept: big (numpy.ndarray") for note in data["state_notes"])

    second = cli("run", "-", "--session", name, stdin="print(kept, 'big' in globals())")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "{'a': 1} False\n"

    sessions = settings.data_dir / "sessions"
    for state in sessions.glob("*/state"):
        if b"kept" in state.read_bytes():
            state.write_bytes(b"garbage")
    third = cli("run", "-", "--session", name, stdin="print(globals().get('kept'))")
    assert third.returncode == 0, third.stderr
    assert third.stdout == "None\n"
    assert "session: state not restored: the saved state is unreadable" in third.stderr

    cli("run", "-", "--session", name, stdin="kept = 2")
    reset = cli("run", "-", "--session", name, "--reset", stdin="print(globals().get('kept'))")
    assert reset.stdout == "None\n"
