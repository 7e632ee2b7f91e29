"""The host and the in-container runtime speak the same markers (one source: app/sandbox/markers)."""

import sandbox_collect
import sandbox_runner

from app.sandbox import markers


def test_the_runner_writes_the_markers_the_host_reads():
    assert sandbox_runner.READY_MARKER == markers.READY_MARKER
    assert sandbox_runner.DONE_MARKER == markers.DONE_MARKER
    assert sandbox_runner.NONCE_LINE == markers.NONCE_LINE
    pattern = markers.done_pattern(b"f00d")
    assert pattern.search(sandbox_runner.DONE_MARKER + b"137 f00d\n")
    assert not pattern.search(sandbox_runner.DONE_MARKER + b"137 beef\n")  # another run's
    assert not pattern.search(sandbox_runner.DONE_MARKER + b"137\n")
    assert sandbox_runner.CODE_MARKER == markers.CODE_MARKER
    assert sandbox_runner.SAVE_MARKER == markers.SAVE_MARKER
    assert markers.SAVE_PATTERN.search(b"out" + sandbox_runner.SAVE_MARKER + b"1\n")


def test_the_warden_reads_the_done_name_the_runner_takes():
    assert sandbox_runner.DONE_NAME == markers.DONE_NAME
    assert sandbox_collect.DONE_NAME == markers.DONE_NAME
