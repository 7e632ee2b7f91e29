"""SandboxClient: the SandboxService of a process that has no Docker access (the bot in compose).

It speaks app/sandboxd/wire.py to `python -m app sandboxd`: a run's files go in the request (read
from the caller's own input folder), the result and its output files come back streamed, each
file written fresh into the request's output folder with the same caps as a local collection.
Every call is bounded (connect, each read, the whole run), and every way the service can fail (not
there, restarted mid-run, silent, a broken stream) is a `sandbox_error` RunResult whose message
starts with "the sandbox is unavailable right now", so a chat keeps chatting.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import structlog
from aiohttp.http_exceptions import LineTooLong

from app.filenames import safe_filename, unique_name
from app.sandbox import (
    InputFile,
    OutputFile,
    RunRequest,
    RunResult,
    RunStatus,
    SandboxStatus,
    SandboxUnavailable,
)
from app.sandbox.environment import SandboxEnvironment
from app.sandboxd import wire
from app.sandboxd.address import ServiceAddress

log = structlog.get_logger(__name__)

UNAVAILABLE = "the sandbox is unavailable right now"
CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 10.0
# The service sends a frame at least every few seconds during a run (wire.py, "alive").
IDLE_TIMEOUT = 30.0
CHUNK = wire.CHUNK
# A result frame holds stdout and stderr (each capped by the service) JSON-escaped.
MAX_FRAME_BYTES = 64 * 1024**2


class ServiceRefused(SandboxUnavailable):
    """The service answers but refuses this client (its token): a configuration error."""


class _Broken(Exception):
    """The run's stream cannot be used; str() is the reason for the user-facing message."""


class SandboxClient:
    def __init__(
        self,
        address: ServiceAddress,
        *,
        token: str | None,
        max_timeout: float,
        run_deadline: float,
        max_output_files: int,
        max_output_bytes: int,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.address = address
        self.max_timeout = max_timeout
        self.run_deadline = run_deadline
        """No run call lasts longer, queue and package installs included."""
        self.max_output_files = max_output_files
        self.max_output_bytes = max_output_bytes
        self.idle_timeout = idle_timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._positions: dict[int, int] = {}
        self._ids = itertools.count()

    # SandboxService

    @property
    def waiting(self) -> int:
        """The farthest queue position of this client's runs (other clients' runs are not seen)."""
        return max(self._positions.values(), default=0)

    async def start(self) -> None:
        """Check that the service answers and adopt its time limit when it is lower."""
        try:
            health = await self.health()
        except SandboxUnavailable as exc:
            log.warning(
                "sandbox service not answering yet", address=str(self.address), error=str(exc)
            )
            return
        limit = health.get("max_timeout")
        if isinstance(limit, int | float) and 0 < limit < self.max_timeout:
            self.max_timeout = float(limit)
        log.info("sandbox service answers", address=str(self.address), ok=health.get("ok"))

    async def close(self) -> None:
        session, self._session = self._session, None
        # A session belongs to the event loop it was made in; one of a finished loop is gone.
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()

    async def health(self) -> dict:
        """The service's health; SandboxUnavailable when it does not answer or is unhealthy."""
        data = await self._get(wire.HEALTH, accept=(200, 503))
        if not data.get("ok"):
            raise SandboxUnavailable(f"the sandbox service is unhealthy: {data.get('error')}")
        return data

    async def status(self) -> SandboxStatus:
        data = await self._get(wire.STATS)
        try:
            return SandboxStatus(
                where=f"sandboxd at {self.address}",
                running=int(data["running"]),
                waiting=int(data["waiting"]),
                capacity=int(data["capacity"]),
                warm_ready=int(data["warm_ready"]),
                warm_size=int(data["warm_size"]),
                max_timeout=float(data["max_timeout"]),
                engine_problem=str(data.get("engine_problem") or ""),
            )
        except (KeyError, TypeError, ValueError):
            raise SandboxUnavailable(
                "the sandbox service sent stats this client cannot read"
            ) from None

    async def describe_environment(self) -> SandboxEnvironment:
        return SandboxEnvironment.from_dict((await self._get(wire.POLICY)).get("environment"))

    async def describe_policy(self) -> dict[str, object]:
        data = await self._get(wire.POLICY)
        policy = data.get("policy")
        if not isinstance(policy, dict):
            raise SandboxUnavailable("the sandbox service sent no policy")
        return policy

    async def run(
        self, request: RunRequest, on_queued: Callable[[int], None] | None = None
    ) -> RunResult:
        files = _present(request)
        timeout = None if request.timeout is None else min(request.timeout, self.max_timeout)
        line = wire.request_line(
            request.code, str(request.user_id), request.session_id, timeout, files
        )
        key = next(self._ids)
        written: list[Path] = []
        try:
            return await self._run(request, line, files, key, on_queued, written)
        except _Broken as exc:
            for path in written:  # a cut stream leaves no partial outputs behind
                path.unlink(missing_ok=True)
            log.warning("sandbox service run failed", reason=str(exc))
            return RunResult(
                run_id=uuid.uuid4().hex[:12],
                status=RunStatus.SANDBOX_ERROR,
                timeout_seconds=timeout or self.max_timeout,
                message=f"{UNAVAILABLE}: {exc}",
            )
        finally:
            self._positions.pop(key, None)

    # One run over the wire

    async def _run(self, request, line, files, key, on_queued, written) -> RunResult:
        timeout = aiohttp.ClientTimeout(
            total=self.run_deadline, sock_connect=CONNECT_TIMEOUT, sock_read=self.idle_timeout
        )
        body = _body(line, request.input_dir, files)
        headers = {"Content-Type": wire.RUN_CONTENT_TYPE}
        try:
            async with self._client().post(
                self.address.base_url + wire.RUNS, data=body, headers=headers, timeout=timeout
            ) as response:
                if response.status != 200:
                    return await self._refused(response)
                return await self._frames(response, request, key, on_queued, written)
        except aiohttp.ClientConnectorError:
            raise _Broken(f"cannot connect to the sandbox service at {self.address}") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise _Broken("the sandbox service stopped answering") from None
        except (aiohttp.ClientError, LineTooLong, wire.ProtocolError, OSError) as exc:
            detail = str(exc) if isinstance(exc, wire.ProtocolError) else type(exc).__name__
            raise _Broken(f"the sandbox service went away during the run ({detail})") from None

    async def _refused(self, response: aiohttp.ClientResponse) -> RunResult:
        try:
            error = str((await response.json(content_type=None)).get("error", ""))[:500]
        except (ValueError, AttributeError, aiohttp.ClientError):
            error = response.reason or ""
        if response.status in (401, 403):
            raise _Broken("the sandbox service refused this client (check SANDBOX_SERVICE_TOKEN)")
        if response.status >= 500:
            raise _Broken(f"the sandbox service failed ({response.status}: {error})")
        return RunResult(
            run_id=uuid.uuid4().hex[:12],
            status=RunStatus.ERROR,
            message=f"the sandbox service refused the run: {error}",
        )

    async def _frames(self, response, request, key, on_queued, written) -> RunResult:
        content = response.content
        while True:
            item = wire.read_frame(await content.readuntil(b"\n", max_size=MAX_FRAME_BYTES))
            event = item["event"]
            if event == "queued" and isinstance(item.get("position"), int):
                self._positions[key] = item["position"]
                if on_queued is not None:
                    on_queued(item["position"])
            elif event == "result":
                break
        values, announced = wire.result_from_wire(item.get("result"))
        self._positions.pop(key, None)
        outputs = await self._receive_files(content, announced, Path(request.output_dir), written)
        if wire.read_frame(await content.readuntil(b"\n", max_size=1024))["event"] != "end":
            raise wire.ProtocolError("the stream did not end after the files")
        return RunResult(**values, files=tuple(outputs))

    async def _receive_files(
        self, content, announced: list[tuple[str, int]], folder: Path, written: list[Path]
    ) -> list[OutputFile]:
        if len(announced) > self.max_output_files:
            raise wire.ProtocolError(f"{len(announced)} output files, over the limit")
        if sum(size for _, size in announced) > self.max_output_bytes:
            raise wire.ProtocolError("the output files are over the size limit")
        if announced:
            folder.mkdir(parents=True, exist_ok=True)
        taken = set(os.listdir(folder)) if announced else set()
        outputs = []
        for announced_name, size in announced:
            name = unique_name(safe_filename(announced_name), taken)
            taken.add(name)
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            written.append(path)
            try:
                left = size
                while left:
                    chunk = await content.read(min(left, CHUNK))
                    if not chunk:
                        raise wire.ProtocolError("an output file was cut short")
                    wire.write_all(fd, chunk)
                    left -= len(chunk)
            finally:
                os.close(fd)
            outputs.append(OutputFile(name=name, size=size, path=path))
        return outputs

    # Plumbing

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            connector: aiohttp.BaseConnector
            if self.address.socket_path is not None:
                connector = aiohttp.UnixConnector(path=str(self.address.socket_path))
            else:
                connector = aiohttp.TCPConnector()
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def reset_session(self, user_id: str, session_id: str) -> bool:
        """Forget a session's state at the service; False when it had none or cannot be asked
        (logged: the session then expires there with FILE_EXPIRATION_HOURS)."""
        body = {"user_id": str(user_id), "session_id": session_id}
        try:
            data = await self._get(wire.SESSION_RESET, body=body)
        except SandboxUnavailable as exc:
            log.warning("session state not reset at the sandbox service", error=str(exc))
            return False
        return data.get("reset") is True

    async def _get(
        self, path: str, accept: tuple[int, ...] = (200,), body: dict | None = None
    ) -> dict:
        """GET `path`, or POST `body` as JSON; the JSON answer."""
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
        url = self.address.base_url + path
        try:
            async with (
                self._client().get(url, timeout=timeout)
                if body is None
                else self._client().post(url, json=body, timeout=timeout)
            ) as response:
                data = await response.json(content_type=None)
                status = response.status
        except aiohttp.ClientConnectorError:
            raise SandboxUnavailable(
                f"cannot connect to the sandbox service at {self.address}"
            ) from None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise SandboxUnavailable(
                f"the sandbox service at {self.address} did not answer ({type(exc).__name__})"
            ) from None
        if status in (401, 403):
            raise ServiceRefused(
                "the sandbox service refused this client (check SANDBOX_SERVICE_TOKEN)"
            )
        if status not in accept or not isinstance(data, dict):
            raise SandboxUnavailable(f"the sandbox service answered {status}")
        return data


def _present(request: RunRequest) -> tuple[InputFile, ...]:
    """The request's files that exist in its input folder, with the size they have now (the
    service takes exactly that many bytes of each)."""
    if request.input_dir is None:
        return ()
    present = []
    for item in request.files:
        try:
            info = os.stat(Path(request.input_dir) / item.filename, follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone since it was listed: the code sees it missing, as in a local run
        present.append(replace(item, size=info.st_size))
    return tuple(present)


async def _body(
    line: bytes, folder: Path | None, files: tuple[InputFile, ...]
) -> AsyncIterator[bytes]:
    yield line
    for item in files:
        assert folder is not None
        with open(Path(folder) / item.filename, "rb") as source:
            left = item.size
            while left:
                chunk = source.read(min(left, CHUNK))
                if not chunk:
                    raise OSError(f"{item.filename} shrank while it was sent")
                yield chunk
                left -= len(chunk)
