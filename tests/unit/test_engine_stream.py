"""ExecStream: docker's multiplexed frames over a socket, read with a deadline."""

import threading
import time

import pytest

from app.sandbox.engine import STDERR, STDOUT, DeadlineExceeded, ExecStream, FramesReader
from tests.fakes.exec_socket import frame


def test_frames_are_demultiplexed_even_when_split_across_reads(pair):
    ours, engine = pair
    payload = frame(STDOUT, b"hello ") + frame(STDERR, b"oops") + frame(STDOUT, b"world")
    engine.sendall(payload[:3])
    threading.Timer(0.05, lambda: (engine.sendall(payload[3:]), engine.close())).start()
    stream = ExecStream("id", ours)
    got = list(stream.frames(time.monotonic() + 5))
    out = b"".join(c for k, c in got if k == STDOUT)
    err = b"".join(c for k, c in got if k == STDERR)
    assert (out, err) == (b"hello world", b"oops")


def test_deadline_interrupts_a_silent_stream(pair):
    ours, _engine = pair
    stream = ExecStream("id", ours)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        list(stream.frames(started + 0.2))
    assert time.monotonic() - started < 2


def test_reading_can_stop_and_resume_mid_frame(pair):
    ours, engine = pair
    big = b"x" * 200_000
    engine.sendall(frame(STDOUT, b"READY") + frame(STDOUT, big) + frame(STDERR, b"end"))
    engine.close()
    stream = ExecStream("id", ours)
    assert stream.next_chunk() == (STDOUT, b"READY")
    first = stream.next_chunk()
    assert first[0] == STDOUT and 0 < len(first[1]) <= len(big)
    rest = list(stream.frames())
    assert len(first[1]) + sum(len(c) for k, c in rest if k == STDOUT) == len(big)
    assert rest[-1] == (STDERR, b"end")


def test_frames_reader_gives_stdout_as_a_file_and_caps_stderr(pair):
    ours, engine = pair
    engine.sendall(frame(STDOUT, b"abc") + frame(STDERR, b"e" * 100) + frame(STDOUT, b"def"))
    engine.close()
    reader = FramesReader(ExecStream("id", ours).frames(), stderr_cap=10)
    assert reader.read() == b"abcdef"
    assert bytes(reader.stderr) == b"e" * 10
