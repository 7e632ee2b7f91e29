"""SandboxServer: `python -m app sandboxd`, the runner behind a narrow HTTP API.

It owns the process's SandboxRunner (and so the warm pool, the package installer, the reaping
and the only Docker access) and serves app/sandboxd/wire.py: on a Unix socket (mode 0660) by
default, on TCP only with a token. Every field of a run is checked before anything is written;
the policy, and every container setting, is the service's own. A run's files arrive in its
request and are written by the service into its own staging folder under names it derives
(`<file id><extension>`), so no path of the client's is ever used. A client that goes away
mid-run cancels its run: the runner removes the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

import structlog
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

from app.sandbox import EngineError, EngineUnavailable, RunRequest, RunResult, SandboxRunner
from app.sandbox.status import failure_message
from app.sandboxd import wire
from app.sandboxd.address import ServiceAddress

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 5.0
POLL_SECONDS = 0.5
# Files are read and written on the event loop, a chunk at a time: copying this much to or from
# the page cache of a local disk takes less than handing it to a thread and back.
CHUNK = wire.CHUNK
SOCKET_MODE = 0o660
HEALTH_TIMEOUT = 5.0
# Runs accepted at once (running, queued or uploading), per slot: past this a client is told the
# service is busy instead of filling its disk with staged inputs.
PENDING_PER_SLOT = 8


class ServeError(RuntimeError):
    """The service cannot listen where it was told to; str() names the fix."""


class SandboxServer:
    def __init__(
        self,
        runner: SandboxRunner,
        limits: wire.RunLimits,
        *,
        address: ServiceAddress,
        staging: Path,
        token: str | None = None,
        housekeeping: Callable[[], Coroutine[object, object, None]] | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        if not address.is_unix and not token:
            raise ServeError("a sandbox service on TCP needs SANDBOX_SERVICE_TOKEN")
        self.runner = runner
        self.limits = limits
        self.address = address
        self.staging = staging
        self.token = token.encode() if token else None
        self.housekeeping = housekeeping
        self.heartbeat = heartbeat
        self.max_pending = runner.slots.capacity * PENDING_PER_SLOT
        self._pending = 0
        self._runs: set[asyncio.Task] = set()
        self._removals: set[asyncio.Future] = set()
        self._app_runner: web.AppRunner | None = None
        self._housekeeper: asyncio.Task | None = None

    # Life

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authorized])
        app.router.add_get(wire.HEALTH, self._health)
        app.router.add_get(wire.STATS, self._stats)
        app.router.add_get(wire.POLICY, self._policy)
        app.router.add_post(wire.RUNS, self._run)
        app.router.add_post(wire.SESSION_RESET, self._reset_session)
        return app

    async def start(self) -> None:
        """Reap leftovers and fill the pool (the runner), then listen."""
        await self.runner.start()
        # A client that disconnects cancels its handler, and with it the run and its container.
        self._app_runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await self._app_runner.setup()
        if self.address.socket_path is not None:
            await self._listen_unix(self.address.socket_path)
        else:
            site = web.TCPSite(self._app_runner, self.address.host, self.address.port)
            try:
                await site.start()
            except OSError as exc:
                raise ServeError(f"cannot listen on {self.address}: {exc.strerror}") from None
        if self.housekeeping is not None:
            self._housekeeper = asyncio.create_task(self.housekeeping())
        log.info("sandbox service listening", address=str(self.address))

    async def _listen_unix(self, path: Path) -> None:
        assert self._app_runner is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if _answers(path):
                raise ServeError(f"another sandbox service is listening on {path}")
            if not path.is_socket():
                raise ServeError(f"{path} exists and is not a socket: remove it or choose another")
            path.unlink()  # a crashed service's socket
        site = web.UnixSite(self._app_runner, str(path))
        try:
            await site.start()
        except OSError as exc:
            raise ServeError(f"cannot listen on {path}: {exc.strerror}") from None
        os.chmod(path, SOCKET_MODE)

    async def close(self) -> None:
        """Stop listening, end the runs in flight (their containers are removed), close the
        runner."""
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        for task in list(self._runs):
            task.cancel()
        if self._runs:
            await asyncio.wait(list(self._runs), timeout=30)
        if self._app_runner is not None:
            await self._app_runner.cleanup()
        await asyncio.gather(*self._removals, return_exceptions=True)
        await self.runner.close()
        if self.address.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.address.socket_path.unlink()

    # Middlewares

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except wire.RequestRejected as exc:
            log.info("request refused", status=exc.status, reason=exc.message)
            return web.json_response(exc.to_json(), status=exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return web.json_response({"error": exc.reason}, status=exc.status)

    @web.middleware
    async def _authorized(self, request: web.Request, handler) -> web.StreamResponse:
        if self.token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not hmac.compare_digest(
                given.encode("utf-8", "surrogateescape"), self.token
            ):
                raise wire.RequestRejected(401, "a valid SANDBOX_SERVICE_TOKEN is required")
        return await handler(request)

    # Read-only endpoints

    async def _health(self, request: web.Request) -> web.Response:
        engine = self.runner.engine
        policy = self.runner.policy
        body: dict = {
            "ok": True,
            "version": wire.VERSION,
            "max_timeout": self.runner.max_timeout,
            "instance": policy.instance,
            "image": policy.image,
            "runtime": policy.runtime,
        }
        try:
            await asyncio.wait_for(engine.call(engine.ping), HEALTH_TIMEOUT)
            await asyncio.wait_for(engine.call(engine.image_id, policy.image), HEALTH_TIMEOUT)
        except TimeoutError:
            reason = "the Docker engine did not answer in time"
        except (EngineUnavailable, EngineError) as exc:
            reason = failure_message(exc, policy.image)
        else:
            return web.json_response(body)
        return web.json_response({**body, "ok": False, "error": reason[:300]}, status=503)
        return web.json_response(body)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response((await self.runner.status()).to_dict())

    async def _policy(self, request: web.Request) -> web.Response:
        policy = await self.runner.describe_policy()
        environment = (await self.runner.describe_environment()).to_dict()
        return web.json_response(
            {"policy": policy, "max_timeout": self.runner.max_timeout, "environment": environment}
        )

    async def _reset_session(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.content.read(wire.REQUEST_OVERHEAD))
        except ValueError:
            raise wire.RequestRejected(400, "the request is not JSON") from None
        user_id, session_id = wire.parse_session(data)
        return web.json_response({"reset": await self.runner.reset_session(user_id, session_id)})

    # Runs

    async def _run(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != wire.RUN_CONTENT_TYPE:
            raise wire.RequestRejected(415, f"a run is sent as {wire.RUN_CONTENT_TYPE}")
        if self._pending >= self.max_pending:
            raise wire.RequestRejected(503, f"the sandbox service is busy ({self._pending} runs)")
        task = asyncio.current_task()
        assert task is not None
        self._pending += 1
        self._runs.add(task)
        # The run's input folder; its collected outputs go beside it (made only when there are).
        work = self.staging / f"run-{os.urandom(8).hex()}"
        outputs = work.with_name(work.name + "-out")
        try:
            try:
                line = await request.content.readuntil(b"\n", max_size=self.limits.max_header_bytes)
            except LineTooLong:
                raise wire.RequestRejected(413, "the run request is too large") from None
            spec = wire.parse_run(line, self.limits)
            if spec.files:
                _make_input_dir(work)
            await self._receive(request, spec, work)
            run = RunRequest(
                code=spec.code,
                user_id=spec.user_id,
                output_dir=outputs,
                input_dir=work if spec.files else None,
                files=spec.files,
                timeout=spec.timeout,
                session_id=spec.session_id,
            )
            response = web.StreamResponse(headers={"Content-Type": wire.FRAMES_CONTENT_TYPE})
            await response.prepare(request)
            try:
                result = await self._execute(response, run)
                await self._send_result(response, result)
            except ConnectionResetError:  # the client went away: its run is over already
                log.info("client went away during the run")
            return response
        finally:
            self._pending -= 1
            self._runs.discard(task)
            # Off the answer's path: the connection serves the client's next request meanwhile.
            removal = asyncio.ensure_future(asyncio.to_thread(_remove, work, outputs))
            self._removals.add(removal)
            removal.add_done_callback(self._removals.discard)

    async def _receive(self, request: web.Request, spec: wire.RunSpec, folder: Path) -> None:
        """Each listed file's bytes, exactly its size, written fresh under the name checked by
        parse_run; then nothing more."""
        content = request.content
        for item in spec.files:
            fd = os.open(
                folder / item.filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644
            )
            try:
                os.fchmod(fd, 0o644)  # whatever the umask: the sandbox's uid reads it
                left = item.size
                while left:
                    chunk = await content.read(min(left, CHUNK))
                    if not chunk:
                        raise wire.RequestRejected(
                            400, f"the body ended before the {item.size} bytes of {item.file_id}"
                        )
                    wire.write_all(fd, chunk)
                    left -= len(chunk)
            finally:
                os.close(fd)
        if await content.read(1):
            raise wire.RequestRejected(400, "the body goes on after the listed files' bytes")

    async def _execute(self, response: web.StreamResponse, run: RunRequest) -> RunResult:
        """The run, with queue positions and heartbeats streamed while it lasts."""
        position = 0

        def queued(at: int) -> None:
            nonlocal position
            position = at

        task = asyncio.ensure_future(self.runner.run(run, on_queued=queued))
        sent, beat = 0, time.monotonic()
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=POLL_SECONDS)
                if task.done():
                    break
                # Our place in the FIFO queue can only fall; the queue's length bounds it.
                position = min(position, self.runner.waiting)
                now = time.monotonic()
                if position != sent:
                    await response.write(wire.frame("queued", position=position))
                    sent, beat = position, now
                elif now - beat >= self.heartbeat:
                    await response.write(wire.frame("alive"))
                    beat = now
            return task.result()
        finally:
            if not task.done():
                task.cancel()  # the client went away: the runner removes the container
                await asyncio.gather(task, return_exceptions=True)

    async def _send_result(self, response: web.StreamResponse, result: RunResult) -> None:
        head = wire.frame("result", result=wire.result_to_wire(result))
        if not result.files:  # the common case: one write, the stream's end included
            await response.write_eof(head + wire.frame("end"))
            return
        await response.write(head)
        for output in result.files:
            fd = os.open(output.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                left = output.size
                while left:
                    chunk = os.read(fd, min(left, CHUNK))
                    if not chunk:
                        raise OSError(f"{output.name} is shorter than collected")
                    await response.write(chunk)
                    left -= len(chunk)
            finally:
                os.close(fd)
        await response.write_eof(wire.frame("end"))


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _make_input_dir(folder: Path) -> None:
    try:
        folder.mkdir()
    except FileNotFoundError:  # the first run: no staging folder yet
        folder.mkdir(parents=True)
    folder.chmod(0o755)  # the sandbox's uid reads it through its mount, whatever the umask


def _remove(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
