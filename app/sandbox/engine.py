"""What the run path needs of a container engine: the `Engine` protocol and the exec stream.

The docker SDK is touched only by app/sandbox/docker_engine.py (DockerEngine, the production
implementation); tests/fakes/engine.py implements the same protocol without Docker, so the
runner, the pool and the collectors can be driven in milliseconds. An ExecStream is docker's
multiplexed frame protocol over a socket, which both implementations speak.

Engine calls block, so async callers go through `call()`, which runs them on the engine's own
thread pool. The event loop never blocks on the engine.
"""

from __future__ import annotations

import io
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

STDOUT = 1
STDERR = 2


class EngineUnavailable(RuntimeError):
    """The Docker engine cannot be reached; the message says where it was looked for."""


class EngineError(RuntimeError):
    """The engine refused or failed a request; str() is its explanation, one line."""


class ImageMissing(EngineError):
    """The image a container was to be created from does not exist."""


class DeadlineExceeded(Exception):
    pass


class ExecStream:
    """A running `docker exec` with stdin attached: write the job, read multiplexed frames.

    Reading honours a deadline (the run's timer) without relying on the SDK's blocking reader.
    """

    def __init__(self, exec_id: str | None, raw: Any) -> None:
        self.exec_id = exec_id
        self._raw = raw
        self._sock: socket.socket = getattr(raw, "_sock", raw)
        self._buffer = bytearray()
        self._eof = False
        self._frame_stream = STDOUT
        self._frame_left = 0

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_input(self) -> None:
        """Close the process's stdin (half-close), keep reading its output."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def next_chunk(self, deadline: float | None = None) -> tuple[int, bytes] | None:
        """The next (stream, chunk) of output, None at EOF; DeadlineExceeded at `deadline`.

        Frame state is kept on the object, so reading may stop and resume between chunks.
        """
        while self._frame_left == 0:
            header = self._read_exact(8, deadline)
            if header is None:
                return None
            self._frame_stream, self._frame_left = struct.unpack(">BxxxL", header)
        chunk = self._read_some(min(self._frame_left, 65536), deadline)
        if not chunk:
            return None
        self._frame_left -= len(chunk)
        return self._frame_stream, chunk

    def frames(self, deadline: float | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield (stream, chunk) until EOF; raise DeadlineExceeded at `deadline` (monotonic)."""
        while (item := self.next_chunk(deadline)) is not None:
            yield item

    def _read_exact(self, n: int, deadline: float | None) -> bytes | None:
        while len(self._buffer) < n:
            if self._eof or not self._fill(deadline):
                return None
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _read_some(self, n: int, deadline: float | None) -> bytes:
        if not self._buffer and (self._eof or not self._fill(deadline)):
            return b""
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _fill(self, deadline: float | None) -> bool:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            timeout_ms = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded
                timeout_ms = max(1, int(remaining * 1000))
            if poller.poll(timeout_ms):
                break
        try:
            data = self._sock.recv(262144)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def is_quiet(self) -> bool:
        """True while nothing arrived and the stream is open: an idle runner says nothing."""
        if self._buffer or self._eof:
            return False
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        return not poller.poll(0)

    def close(self) -> None:
        for closer in (getattr(self._raw, "close", None), self._sock.close):
            try:
                if closer:
                    closer()
            except OSError:
                pass


class FramesReader(io.RawIOBase):
    """stdout of an exec as a file object (for tarfile); stderr is kept apart, capped."""

    def __init__(self, frames: Iterator[tuple[int, bytes]], stderr_cap: int = 65536) -> None:
        self._frames = frames
        self._pending = b""
        self.stderr = bytearray()
        self._stderr_cap = stderr_cap

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._pending:
            try:
                stream, chunk = next(self._frames)
            except StopIteration:
                return 0
            if stream == STDOUT:
                self._pending = chunk
            elif len(self.stderr) < self._stderr_cap:
                self.stderr += chunk[: self._stderr_cap - len(self.stderr)]
        n = min(len(target), len(self._pending))
        target[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def drain(self) -> None:
        while self.readinto(bytearray(65536)):
            pass


@dataclass
class ExecStatus:
    running: bool
    exit_code: int | None


class Engine(Protocol):
    """The engine operations of the run path. Every method but `call` and `close` blocks.

    Failures raise EngineUnavailable (the engine cannot be reached), ImageMissing or EngineError;
    a container that is gone is not an error for `remove`, `kill`, `is_running` and `state`.
    """

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def close(self) -> None: ...

    def ping(self) -> None: ...

    def image_id(self, reference: str) -> str: ...

    def read_image_file(self, args: dict, path: str, max_bytes: int) -> bytes | None: ...

    def run_to_completion(self, args: dict, timeout: float) -> int | None: ...

    def create_attach_start(self, args: dict) -> tuple[str, ExecStream]: ...

    def exec_attach(
        self, container_id: str, *, cmd: list[str], user: str, environment: dict, workdir: str
    ) -> ExecStream: ...

    def exec_status(self, exec_id: str, wait: float = 2.0) -> ExecStatus: ...

    def is_running(self, container_id: str) -> tuple[bool, bool]: ...

    def state(self, container_id: str) -> dict: ...

    def inspect(self, container_id: str) -> dict:
        """The engine's inspection of a container ({} when it is gone)."""
        ...

    def kill(self, container_id: str) -> None: ...

    def remove(self, container_id: str) -> None:
        """Remove a container, killing it; one whose removal fails stays in `unremoved`."""
        ...

    unremoved: set[str]
    """Containers whose removal failed (the engine was away or refused), wherever it was tried:
    the reaper's (app/sandbox/leftovers.py) as soon as the engine answers again."""

    def ensure_network(self, args: dict) -> None:
        """Create the network `args` describes (name, driver, options, labels) unless it exists;
        EngineError when a network of that name exists with other options."""
        ...

    def containers(self, filters: dict) -> list[dict]:
        """Every container matching `filters`, stopped ones too: Id, Names, Labels, Created
        (epoch), State (`running`, `exited`, `created`...)."""
        ...
