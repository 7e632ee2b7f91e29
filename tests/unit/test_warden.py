"""The host side of the output warden: done markers, its line protocol, outputs that overtake."""

import time

import pytest

from app.sandbox.engine import STDERR, STDOUT, ExecStream, FramesReader
from app.sandbox.execution import CappedBuffer
from app.sandbox.outputs import OutputReceiver
from app.sandbox.warden import DONE_MARKER, DoneWatch, Warden, WardenGone
from tests.fakes.engine import output_stream
from tests.fakes.exec_socket import frame

NONCE = b"5eed"
MARK = DONE_MARKER + b"0 5eed\n"


def test_markers_count_only_when_both_streams_end_with_one():
    watch = DoneWatch(NONCE)
    watch.add(STDOUT, b"result\n" + MARK[:5])
    watch.add(STDERR, MARK)
    assert not watch.should_ask()  # stdout's marker is not complete yet
    watch.add(STDOUT, MARK[5:])
    assert watch.should_ask()
    assert watch.marker_length(STDOUT) == len(MARK)


def test_output_after_a_marker_means_it_was_not_the_end():
    watch = DoneWatch(NONCE)
    watch.add(STDOUT, MARK)
    watch.add(STDERR, MARK)
    watch.asked()  # the warden said busy
    assert not watch.should_ask()  # nothing new: do not ask again
    watch.add(STDOUT, b"more output\n")
    assert not watch.should_ask()
    watch.add(STDOUT, DONE_MARKER + b"3 5eed\n")
    assert watch.should_ask()


def test_markers_without_the_runs_nonce_are_output_not_the_end():
    watch = DoneWatch(NONCE)
    for forged in (DONE_MARKER + b"0\n", DONE_MARKER + b"0 beef\n", DONE_MARKER + b"0 5eed \n"):
        watch.add(STDOUT, forged)
        watch.add(STDERR, forged)
        assert not watch.should_ask()
        assert watch.marker_length(STDOUT) == 0


def test_dropping_the_marker_restores_the_output_exactly():
    buffer = CappedBuffer(10)
    buffer.add(b"hello\n")
    buffer.add(MARK)
    buffer.drop_tail(len(MARK))
    assert buffer.text() == "hello\n" and not buffer.truncated
    flooded = CappedBuffer(4)
    flooded.add(b"abcdef")
    flooded.add(MARK)
    flooded.drop_tail(len(MARK))
    assert bytes(flooded.data) == b"abcd" and flooded.truncated  # the flood stays truncated


def test_outputs_that_overtake_the_collecting_line_are_not_lost(pair, tmp_path):
    ours, inside = pair
    warden = Warden(ExecStream(None, ours))
    inside.sendall(frame(STDERR, b"ready\n"))
    warden.await_ready(time.monotonic() + 5)
    archive = output_stream({"plot.png": b"PNG DATA"})
    # stdout and stderr are separate pipes inside: the outputs may arrive before the answer.
    inside.sendall(frame(STDOUT, archive[:12]) + frame(STDERR, b"collecting 0\n"))
    inside.sendall(frame(STDOUT, archive[12:]) + frame(STDERR, b'{"oom_kills": 2}\n'))
    assert warden.ask() == "collecting 0"
    assert inside.recv(100) == b"collect\n"
    receiver = OutputReceiver(tmp_path, 5, 1000)
    deadline = time.monotonic() + 5
    receiver.receive(FramesReader(warden.output_frames(deadline)))
    assert [f.name for f in receiver.files] == ["plot.png"]
    assert (tmp_path / "plot.png").read_bytes() == b"PNG DATA"
    assert warden.report(deadline) == {"oom_kills": 2}


def test_a_warden_that_died_is_reported_not_waited_for(pair):
    ours, inside = pair
    warden = Warden(ExecStream(None, ours))
    inside.close()
    with pytest.raises(WardenGone):
        warden.ask(timeout=2)
