"""DockerEngine: the one class that talks to the Docker engine.

The docker SDK blocks, so async callers go through `call()`, which runs SDK work on this engine's
own thread pool (a run holds a thread for its whole exec step; sharing asyncio's default pool
would let long runs starve everything else). The event loop never blocks on Docker.
"""

from __future__ import annotations

import asyncio
import io
import os
import select
import socket
import struct
import tarfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import requests
from docker.errors import DockerException, ImageNotFound, NotFound

T = TypeVar("T")

STDOUT = 1
STDERR = 2


class EngineUnavailable(RuntimeError):
    """The Docker engine cannot be reached; the message says where it was looked for."""


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


class DockerEngine:
    def __init__(
        self,
        client_factory: Callable[[], docker.DockerClient] | None = None,
        max_workers: int = 16,
    ) -> None:
        self._client_factory = client_factory or (lambda: docker.from_env(timeout=120))
        self._client: docker.DockerClient | None = None
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker")

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = self._client_factory()
            except DockerException as exc:
                raise EngineUnavailable(self._unreachable(exc)) from None
        return self._client

    def _unreachable(self, exc: Exception) -> str:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return (
            f"sandbox unavailable: cannot reach the Docker engine at {where} ({reason}). "
            "Is dockerd running and is its socket readable by this user?"
        )

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    # Engine

    def ping(self) -> None:
        try:
            self.client.ping()
        except (DockerException, OSError) as exc:
            raise EngineUnavailable(self._unreachable(exc)) from None

    def info(self) -> dict:
        return self.client.info()

    def image_labels(self, reference: str) -> dict[str, str] | None:
        """The labels of a local image, None when it does not exist."""
        try:
            image = self.client.images.get(reference)
        except ImageNotFound:
            return None
        return image.labels or {}

    def image_id(self, reference: str) -> str:
        """The content id (sha256:...) of a local image; ImageNotFound when it does not exist."""
        return self.client.images.get(reference).id

    def read_image_file(self, args: dict, path: str, max_bytes: int) -> bytes | None:
        """A regular file of an image, read through a container that is created, never started.

        None when the file does not exist, is not a regular file or is larger than `max_bytes`.
        """
        container_id = self.client.containers.create(**args).id
        try:
            try:
                chunks, stat = self.client.api.get_archive(container_id, path)
            except NotFound:
                return None
            if stat.get("size", 0) > max_bytes:
                return None
            data = b"".join(chunks)
        finally:
            self.remove(container_id)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None or not member.isfile() or member.size > max_bytes:
                return None
            extracted = tar.extractfile(member)
            return extracted.read() if extracted else None

    def run_to_completion(self, args: dict, timeout: float) -> int | None:
        """Create, start and wait for a container, then remove it. Its exit code, or None when
        `timeout` ran out (removal kills it)."""
        container = self.client.containers.create(**args)
        try:
            container.start()
            try:
                return int(self.client.api.wait(container.id, timeout=timeout)["StatusCode"])
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                return None
        finally:
            self.remove(container.id)

    # Containers

    def create_and_start(self, args: dict) -> str:
        container = self.client.containers.create(**args)
        try:
            container.start()
        except BaseException:
            self.remove(container.id)
            raise
        return container.id

    def create_attach_start(self, args: dict) -> tuple[str, ExecStream]:
        """Create a container, attach to its main process's stdio (before it can say a word),
        start it; (id, stream). The stream writes to the main process's stdin (`stdin_open`)."""
        container = self.client.containers.create(**args)
        try:
            raw = self.client.api.attach_socket(
                container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            stream = ExecStream(None, raw)
            try:
                container.start()
            except BaseException:
                stream.close()
                raise
        except BaseException:
            self.remove(container.id)
            raise
        return container.id, stream

    def is_running(self, container_id: str) -> tuple[bool, bool]:
        """(running, oom_killed) for a container; (False, False) when it is gone."""
        try:
            state = self.client.api.inspect_container(container_id)["State"]
        except NotFound:
            return False, False
        return bool(state.get("Running")), bool(state.get("OOMKilled"))

    def state(self, container_id: str) -> dict:
        """The engine's State of a container ({} when it is gone)."""
        try:
            return self.client.api.inspect_container(container_id).get("State") or {}
        except NotFound:
            return {}

    def kill(self, container_id: str) -> None:
        try:
            self.client.api.kill(container_id)
        except (NotFound, DockerException):
            pass

    def remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except NotFound:
            pass

    def list_containers(self, filters: dict) -> list[str]:
        return [c["Id"] for c in self.client.api.containers(all=True, filters=filters)]

    # Exec

    def exec_attach(self, container_id: str, *, cmd, user, environment, workdir) -> ExecStream:
        exec_id = self.client.api.exec_create(
            container_id,
            cmd,
            stdin=True,
            stdout=True,
            stderr=True,
            user=user,
            environment=environment,
            workdir=workdir,
        )["Id"]
        raw = self.client.api.exec_start(exec_id, socket=True)
        return ExecStream(exec_id, raw)

    def exec_status(self, exec_id: str, wait: float = 2.0) -> ExecStatus:
        """Exit status of an exec; waits briefly for the engine to notice the process ended."""
        end = time.monotonic() + wait
        while True:
            info = self.client.api.exec_inspect(exec_id)
            if not info.get("Running") or time.monotonic() >= end:
                return ExecStatus(bool(info.get("Running")), info.get("ExitCode"))
            time.sleep(0.01)

