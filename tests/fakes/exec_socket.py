"""The engine's end of an exec or attach stream: docker's multiplexed frames over a socket pair."""

import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager


def frame(kind: int, data: bytes) -> bytes:
    """One frame as dockerd sends it: stream id, three zero bytes, big-endian length, data."""
    return struct.pack(">BxxxL", kind, len(data)) + data


@contextmanager
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(ours, engine's): wrap the first in an ExecStream, write frames to the second."""
    ours, engine = socket.socketpair()
    try:
        yield ours, engine
    finally:
        ours.close()
        engine.close()
