"""The sandbox's own end, in the real in-container warden (sandbox_collect.py --serve) run as a
process here: it exits (and so would the container) when its stdin closes, when the run's
deadline passes with a process of the code's uid still alive, and after its idle life. Whether
the container really ends with it is tested with real containers
(tests/integration/test_controller_faults.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sandbox_collect

SCRIPT = Path(sandbox_collect.__file__)
FREE_UID = 29_871  # in the code range, used by nothing on a test machine


def warden(tmp_path: Path, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--serve", "--root", str(tmp_path), "--max-files", "5"]
        + ["--max-bytes", "1000", "--code-uid", str(FREE_UID), *extra],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    assert process.stderr.readline() == b"ready\n"
    return process


def test_its_stdin_closing_ends_it(tmp_path):
    process = warden(tmp_path)
    assert process.stdin is not None
    process.stdin.close()  # the host's attach went away
    assert process.wait(10) == sandbox_collect.EXIT_CONTROLLER_GONE


def test_it_ends_itself_after_its_idle_life(tmp_path):
    process = warden(tmp_path, "--idle-seconds", "0.3")
    assert process.wait(10) == sandbox_collect.EXIT_COLLECT_DEADLINE  # stdin still open


def test_a_deadline_with_nothing_of_the_code_left_waits_for_the_collection(tmp_path):
    process = warden(tmp_path, "--collect-seconds", "0.5")
    assert process.stdin is not None
    process.stdin.write(b"deadline 0.2\n")
    process.stdin.flush()
    # Nothing of the code runs: not killed at the deadline, ended after the collection time.
    assert process.wait(10) == sandbox_collect.EXIT_COLLECT_DEADLINE


@pytest.mark.skipif(os.geteuid() != 0, reason="running a process as the code's uid needs root")
def test_a_deadline_passed_with_the_code_still_running_ends_it_at_once(tmp_path):
    code = subprocess.Popen(
        ["sleep", "60"], user=FREE_UID, group=FREE_UID, stdout=subprocess.DEVNULL
    )
    try:
        process = warden(tmp_path, "--collect-seconds", "600")
        assert process.stdin is not None
        process.stdin.write(b"deadline 0.2\n")
        process.stdin.flush()
        assert process.wait(10) == sandbox_collect.EXIT_DEADLINE
    finally:
        code.kill()
        code.wait()
