"""SandboxRunner: one short-lived, hardened container per code run.

Lifecycle of a run (see README, "How a run works"):

0. packages (not timed, outside a run slot): approved packages the code imports but the image
   lacks are installed by a separate install container (app/sandbox/packages) and mounted
   read-only into the run; a run that still dies on one of them is run once more.
1. setup (not timed): create the container from the policy, attach to its main process (the
   output warden, app/sandbox/warden.py, another uid than the code's) and start it, then start
   the in-container runner with `docker exec`; both say ready, the runner waits on stdin.
2. exec (timed): the code is handed over on stdin and the timer runs until the code is over: the
   runner's done markers end both streams and the warden confirms that no process of the code is
   left (or, failing that, the runner's stream ends). On expiry the run is `timeout` and keeps
   the output read so far.
3. collect (not timed): the warden streams the output folder's regular files out, capped. After a
   timeout, or when the warden cannot (files made private, runner killed), the one-shot collector
   (`docker exec` as the code's uid) kills whatever is left and does the same. stdout/stderr were
   capped while they were read.
4. the container is removed, always; leftovers of dead owners are reaped at start-up.

A started runner (`await runner.start()`, as the bot does) keeps a warm pool (app/sandbox/pool.py)
when SANDBOX_WARM_POOL_SIZE > 0: a run then takes a container whose setup is already done, and falls
back to the cold path when none is ready. A started runner also removes containers in the
background after the result is returned; `await runner.close()` waits for those removals.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog
from docker.errors import APIError, DockerException, ImageNotFound

from app.filenames import safe_filename
from app.sandbox.engine import (
    STDERR,
    STDOUT,
    DeadlineExceeded,
    DockerEngine,
    EngineUnavailable,
    ExecStream,
    FramesReader,
)
from app.sandbox.outputs import OutputReceiver
from app.sandbox.packages import PackageInstaller, PackagePlan
from app.sandbox.policy import HostPathError, SandboxPolicy
from app.sandbox.pool import StagingError, WarmContainer, WarmPool, remove_sandbox
from app.sandbox.result import RunRequest, RunResult, RunStatus, SkippedOutput
from app.sandbox.slots import RunSlots
from app.sandbox.warden import DoneWatch, Warden, WardenGone

OWNER_LABEL = "io.codeinterp.owner"
# Same bytes as READY_MARKER in sandbox-image/runtime/sandbox_runner.py.
READY_MARKER = b"\x1e\x1ecodeinterp-ready\n"
READY_TIMEOUT = 60.0
# How often the exec step checks that the container is still alive. Under gVisor an exec stream
# stays open when the whole sandbox dies (e.g. its memory cgroup killed it), so EOF alone is not
# enough to notice the end of a run.
LIVENESS_INTERVAL = 1.0
IMAGE_BUILD_HINT = "python -m app image build"
# Below this, a warm gVisor sandbox (its kernel, the preloaded runner, the warden) leaves the code
# little memory: the runner warns at start.
SMALL_GVISOR_MEMORY = 512 * 1024**2
log = structlog.get_logger(__name__)


class RunnerNotReady(RuntimeError):
    """The in-container runner failed before it could take the code."""


class CappedBuffer:
    """Keeps the first `cap` bytes of a stream and remembers whether more arrived."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False
        self.received = 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
        self.received += len(chunk)

    def drop_tail(self, n: int) -> None:
        """Forget the last `n` bytes received (the runner's done marker is not output)."""
        if n <= 0:
            return
        self.received -= n
        del self.data[self.received :]
        self.truncated = self.received > self.cap

    def text(self) -> str:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # A cut in the middle of a character drops the partial character instead of mangling it.
        return decoder.decode(bytes(self.data), final=not self.truncated)


@dataclass
class ExecOutcome:
    stdout: CappedBuffer
    stderr: CappedBuffer
    timed_out: bool
    seconds: float
    sandbox_died: bool = False
    collecting: bool = False
    """The warden confirmed that the code is over and is sending the outputs."""
    done_status: int | None = None
    """The code's exit status as the warden read it (None: the runner was gone; ask the engine)."""


@dataclass
class Collected:
    files: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    oom_kills: int = 0
    container_oom: bool = False
    sandbox_stopped: bool = False
    seconds: float = 0.0


def classify(
    *,
    timed_out: bool,
    exit_code: int | None,
    oom_kills: int,
    container_oom: bool,
    sandbox_stopped: bool = False,
) -> RunStatus:
    if timed_out:
        return RunStatus.TIMEOUT
    if sandbox_stopped:
        # The whole sandbox died under the code (gVisor: its kernel hit the process or memory
        # limit); whatever exit status the runner's stream reported is not the code's.
        return RunStatus.OOM if container_oom else RunStatus.KILLED
    if exit_code == 0:
        return RunStatus.OK
    if container_oom or oom_kills > 0:
        return RunStatus.OOM
    if exit_code is None or exit_code > 128:
        return RunStatus.KILLED
    return RunStatus.ERROR


def _explain(
    status: RunStatus, exit_code: int | None, timeout: float, memory: int, stopped: bool = False
) -> str:
    if status is RunStatus.TIMEOUT:
        return f"the code ran longer than the {timeout:g} s limit and was stopped"
    if status is RunStatus.OOM:
        return f"the code ran out of memory (limit {memory // 1024**2} MiB) and was killed"
    if status is RunStatus.KILLED and stopped:
        return (
            "the sandbox was stopped while the code ran (it exhausted the process or memory "
            "limit); its output files are lost"
        )
    if status is RunStatus.KILLED:
        if exit_code is not None and exit_code > 128:
            try:
                name = signal.Signals(exit_code - 128).name
            except ValueError:
                name = f"signal {exit_code - 128}"
            return f"the code was killed ({name})"
        return "the code was killed"
    if status is RunStatus.ERROR:
        return f"the code exited with status {exit_code}"
    return ""


def _process_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_token() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or 0}"


def owner_is_dead(token: str) -> bool:
    """True when the process that created a container is known to be gone."""
    host, _, rest = token.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host or container: its liveness cannot be seen from here
    return _process_start(int(pid_text)) != start


class SandboxRunner:
    def __init__(
        self,
        policy: SandboxPolicy,
        engine: DockerEngine,
        *,
        max_timeout: float,
        slots: RunSlots | None = None,
        leftover_age: float | None = None,
        packages: PackageInstaller | None = None,
        warm_pool_size: int = 0,
        warm_pool_max_age: float = 600.0,
    ) -> None:
        self.policy = policy
        self.engine = engine
        self.max_timeout = max_timeout
        self.slots = slots or RunSlots(4)
        # Past this age a container is a leftover whoever made it: no run lives that long.
        self.leftover_age = leftover_age or (
            max_timeout + policy.collect_timeout + policy.install_timeout + 600
        )
        self._owner = owner_token()
        self.packages = packages
        self.pool: WarmPool | None = None
        if warm_pool_size > 0:
            self.pool = WarmPool(
                policy,
                engine,
                size=warm_pool_size,
                max_age=warm_pool_max_age,
                labels={OWNER_LABEL: self._owner},
                start_processes=self._start_processes,
            )
        self._started = False
        self._removals: set[asyncio.Task] = set()

    # Public API

    async def run(
        self, request: RunRequest, on_queued: Callable[[int], None] | None = None
    ) -> RunResult:
        run_id = uuid.uuid4().hex[:12]
        with structlog.contextvars.bound_contextvars(run_id=run_id, user_id=request.user_id):
            problem = self._check_request(request)
            if problem:
                log.info("run refused", reason=problem)
                return RunResult(run_id=run_id, status=RunStatus.ERROR, message=problem)
            timeout = min(request.timeout or self.max_timeout, self.max_timeout)
            plan = None
            if self.packages is not None:
                # Before the run and outside its timer (and outside a run slot).
                plan = await self.packages.prepare(request.code, run_id, str(request.user_id))
            result = await self._queued_run(request, run_id, timeout, plan, on_queued)
            if plan is not None:
                result = await self._package_fallback(request, run_id, timeout, plan, result, on_queued)
            log.info(
                "run finished",
                status=result.status.value,
                exit_code=result.exit_code,
                exec_seconds=round(result.exec_seconds, 3),
                setup_seconds=round(result.setup_seconds, 3),
                files=len(result.files),
            )
            return result

    async def start(self) -> None:
        """Long-lived use (the bot, bench): reap leftovers, start the warm pool, remove in background."""
        if self._started:
            return
        self._started = True
        await self.reap_leftovers()
        if self.pool is not None:
            if self.policy.runtime == "runsc" and self.policy.memory_bytes < SMALL_GVISOR_MEMORY:
                log.warning(
                    "SANDBOX_MEMORY is small for warm gVisor sandboxes: about 170 MiB is in use "
                    "before the code starts; runs may end as oom",
                    memory_mib=self.policy.memory_bytes >> 20,
                    advised_mib=SMALL_GVISOR_MEMORY >> 20,
                )
            await self.pool.start()

    async def close(self) -> None:
        """Remove the warm pool's containers and wait for every pending removal."""
        if self.pool is not None:
            await self.pool.close()
        await self.wait_removals()

    async def wait_removals(self) -> None:
        """Wait until every container removal scheduled so far is done."""
        while self._removals:
            await asyncio.gather(*list(self._removals), return_exceptions=True)

    async def reap_leftovers(self) -> int:
        """Remove our containers whose owner process is gone, or that are older than any run."""
        try:
            return await self.engine.call(self._reap_blocking)
        except (EngineUnavailable, DockerException) as exc:
            log.warning("leftover reaping skipped", error=str(exc)[:200])
            return 0

    # Steps

    async def _queued_run(
        self,
        request: RunRequest,
        run_id: str,
        timeout: float,
        plan: PackagePlan | None,
        on_queued: Callable[[int], None] | None,
    ) -> RunResult:
        queued_at = time.monotonic()
        async with self.slots.acquire(str(request.user_id), on_queued):
            queue_seconds = time.monotonic() - queued_at
            return await self._run_in_container(request, run_id, timeout, queue_seconds, plan)

    async def _package_fallback(
        self,
        request: RunRequest,
        run_id: str,
        timeout: float,
        plan: PackagePlan,
        result: RunResult,
        on_queued: Callable[[int], None] | None,
    ) -> RunResult:
        """A run that died on a missing approved package gets it and runs once more, no more."""
        assert self.packages is not None
        user_id = str(request.user_id)
        if result.status is RunStatus.ERROR and await self.packages.fallback(
            plan, result.stderr, run_id, user_id
        ):
            log.info("running again with the missing package installed")
            for stale in result.files:  # the first attempt's outputs are replaced, not mixed in
                stale.path.unlink(missing_ok=True)
            result = await self._queued_run(request, run_id, timeout, plan, on_queued)
            if result.status is RunStatus.ERROR:
                await self.packages.install_for_next_run(plan, result.stderr, run_id, user_id)
        message = result.message
        if result.status is RunStatus.ERROR:
            extra = self.packages.explain(plan, result.stderr)
            message = f"{message}; {extra}" if message and extra else (message or extra)
        return replace(
            result,
            install_seconds=plan.install_seconds,
            installed_packages=tuple(plan.installed),
            message=message,
        )

    def _check_request(self, request: RunRequest) -> str:
        if not request.code.strip():
            return "there is no code to run"
        size = len(request.code.encode("utf-8", errors="surrogatepass"))
        if size > self.policy.max_code_bytes:
            return f"the code is {size} bytes, over the limit of {self.policy.max_code_bytes} bytes"
        if request.timeout is not None and request.timeout <= 0:
            return "the timeout must be a positive number of seconds"
        return ""

    async def _run_in_container(
        self,
        request: RunRequest,
        run_id: str,
        timeout: float,
        queue_seconds: float,
        plan: PackagePlan | None = None,
    ) -> RunResult:
        started = time.monotonic()
        container_id: str | None = None
        staging: Path | None = None
        base = {"run_id": run_id, "timeout_seconds": timeout, "queue_seconds": queue_seconds}
        packages = plan.mounts if plan is not None else {}
        try:
            # Cached packages are mounted when a container is created; a warm container was
            # created before the code was known, so a run that needs them starts cold.
            warm = None if packages else await self._take_warm(request)
            if warm is not None:
                container_id, staging = warm.container_id, warm.input_dir
                stream, warden = warm.stream, warm.warden
                log.info("warm container taken", container=container_id[:12])
            else:
                args = self.policy.container_args(
                    run_id=run_id,
                    user_id=str(request.user_id),
                    input_dir=request.input_dir,
                    packages=packages,
                )
                args["labels"][OWNER_LABEL] = self._owner
                container_id, attached = await self._create(args)
                stream, warden = await self.engine.call(
                    self._start_processes, container_id, attached
                )
            try:
                payload = self._payload(request, self.policy.package_paths(packages))
                setup_seconds = time.monotonic() - started
                outcome = await self.engine.call(
                    self._exec_step, stream, payload, timeout, container_id, warden
                )
                exit_code = None
                # Stop reading the runner before collecting: an unread stream (a flood cut at
                # the timeout) blocks the engine's I/O for the next exec of this container.
                stream.close()
                if outcome.collecting:
                    # The warden confirmed that the code is over: it collects, no exec needed.
                    collecting = self.engine.call(
                        self._collect_from_warden, warden, container_id, Path(request.output_dir)
                    )
                    if outcome.done_status is not None:
                        exit_code, collected = outcome.done_status, await collecting
                    else:  # the runner had exited already: the engine has its status
                        status, collected = await asyncio.gather(
                            self.engine.call(self.engine.exec_status, stream.exec_id), collecting
                        )
                        exit_code = status.exit_code
                else:
                    collecting = self.engine.call(
                        self._collect, container_id, Path(request.output_dir), outcome.timed_out
                    )
                    if outcome.timed_out or outcome.sandbox_died:
                        collected = await collecting
                    else:
                        # The runner's stream closed, so it has exited: its status is final and
                        # can be read while the collector works (one round trip less).
                        status, collected = await asyncio.gather(
                            self.engine.call(self.engine.exec_status, stream.exec_id), collecting
                        )
                        exit_code = status.exit_code
            finally:
                stream.close()
                warden.close()
            status = classify(
                timed_out=outcome.timed_out,
                exit_code=exit_code,
                oom_kills=collected.oom_kills,
                container_oom=collected.container_oom,
                sandbox_stopped=collected.sandbox_stopped,
            )
            return RunResult(
                **base,
                status=status,
                exit_code=exit_code,
                stdout=outcome.stdout.text(),
                stderr=outcome.stderr.text(),
                stdout_truncated=outcome.stdout.truncated,
                stderr_truncated=outcome.stderr.truncated,
                setup_seconds=setup_seconds,
                exec_seconds=outcome.seconds,
                collect_seconds=collected.seconds,
                files=tuple(collected.files),
                skipped=tuple(collected.skipped),
                message=_explain(
                    status, exit_code, timeout, self.policy.memory_bytes, collected.sandbox_stopped
                ),
            )
        except ImageNotFound:
            return self._infra_error(
                base,
                started,
                f"sandbox image {self.policy.image!r} not found: build it with `{IMAGE_BUILD_HINT}`",
            )
        except EngineUnavailable as exc:
            return self._infra_error(base, started, str(exc))
        except RunnerNotReady as exc:
            return self._infra_error(base, started, f"sandbox runner failed to start: {exc}")
        except HostPathError as exc:
            return self._infra_error(base, started, f"sandbox misconfigured: {exc}")
        except (APIError, DockerException, OSError) as exc:
            reason = str(getattr(exc, "explanation", None) or exc)
            if "bind source path does not exist" in reason:
                return self._infra_error(
                    base,
                    started,
                    "sandbox misconfigured: the Docker host has no folder "
                    f"{reason.rsplit(': ', 1)[-1]}; HOST_DATA_DIR must be the host path of DATA_DIR",
                )
            log.exception("sandbox failure")
            return self._infra_error(base, started, f"sandbox failure: {reason[:300]}")
        finally:
            if container_id is not None:
                await self._dispose(container_id, staging)

    async def _take_warm(self, request: RunRequest) -> WarmContainer | None:
        """A warm container holding the request's files, or None to start a cold one."""
        if self.pool is None or not self._started:
            return None
        if request.input_dir is not None:
            self.policy.host_path(request.input_dir)  # same rule as a cold mount: DATA_DIR only
        warm = self.pool.take()
        if warm is None:
            log.info("no warm container ready; starting a cold one")
            return None
        if request.input_dir is not None:
            names = [f.filename for f in request.files]
            if not names:  # no manifest: the code sees the folder's files, as in a cold run
                names = await asyncio.to_thread(_top_level_files, Path(request.input_dir))
            try:
                await asyncio.to_thread(warm.stage, Path(request.input_dir), names)
            except (OSError, StagingError) as exc:
                log.warning("warm container could not take the files", error=str(exc)[:200])
                self.pool.dispose(warm)
                return None
            except BaseException:  # cancelled while staging: the container must not be lost
                self.pool.dispose(warm)
                raise
        return warm

    async def _dispose(self, container_id: str, staging: Path | None) -> None:
        """Remove a run's container (and warm staging folder): off the reply's path when started."""
        if self.pool is not None:
            self.pool.replenish()
        removal = remove_sandbox(self.engine, container_id, staging)
        if not self._started:
            await asyncio.shield(removal)
            return
        task = asyncio.get_running_loop().create_task(removal)
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def _create(self, args: dict) -> tuple[str, ExecStream]:
        """Create and start the container, attached to its warden; a cancellation (shutdown)
        waits for the id to clean up.

        The engine call finishes in its thread whatever happens to the awaiting task, so without
        the id the `finally` of the run could not remove a container created a moment later.
        """
        creating = asyncio.ensure_future(self.engine.call(self.engine.create_attach_start, args))
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            try:
                container_id, attached = await creating
            except Exception:
                raise asyncio.CancelledError from None
            attached.close()
            await asyncio.shield(self.engine.call(self.engine.remove, container_id))
            raise

    def _infra_error(self, base: dict, started: float, message: str) -> RunResult:
        log.warning("sandbox error", message=message)
        return RunResult(
            **base,
            status=RunStatus.SANDBOX_ERROR,
            setup_seconds=time.monotonic() - started,
            message=message,
        )

    def _payload(self, request: RunRequest, paths: list[str]) -> bytes:
        job = {
            "code": request.code,
            "files": [f.manifest_entry() for f in request.files],
            "paths": paths,
        }
        return json.dumps(job).encode() + b"\n"

    @staticmethod
    def _await_ready(stream: ExecStream) -> None:
        """Setup ends when the runner says it is ready; anything else is a broken image."""
        seen = bytearray()
        errors = CappedBuffer(2000)
        try:
            while len(seen) < len(READY_MARKER):
                item = stream.next_chunk(time.monotonic() + READY_TIMEOUT)
                if item is None:
                    break
                kind, chunk = item
                if kind == STDOUT:
                    seen += chunk
                else:
                    errors.add(chunk)
        except DeadlineExceeded:
            raise RunnerNotReady(f"no answer within {READY_TIMEOUT:g} s") from None
        if bytes(seen) != READY_MARKER:
            detail = errors.text().strip() or "it exited without a word"
            raise RunnerNotReady(f"{detail[-500:]} (is the image current? `{IMAGE_BUILD_HINT}`)")

    def _start_processes(
        self, container_id: str, attached: ExecStream, preload: tuple[str, ...] = ()
    ) -> tuple[ExecStream, Warden]:
        """Start the runner next to the warden (the main process, `attached`); wait for both."""
        warden = Warden(attached)
        try:
            stream = self.engine.exec_attach(container_id, **self.policy.runner_exec(preload))
        except BaseException:
            warden.close()
            raise
        try:
            self._await_ready(stream)
            try:
                warden.await_ready(time.monotonic() + READY_TIMEOUT)
            except WardenGone as exc:
                raise RunnerNotReady(f"{exc} (is the image current? `{IMAGE_BUILD_HINT}`)") from None
        except BaseException:
            stream.close()
            warden.close()
            raise
        return stream, warden

    def _exec_step(
        self,
        stream: ExecStream,
        payload: bytes,
        timeout: float,
        container_id: str,
        warden: Warden,
    ) -> ExecOutcome:
        """The timed step: hand the code over and read until the code is over.

        The code is over when the runner's done markers end both streams and the warden confirms
        that no process of the code is left, or when the runner's stream ends. Every
        LIVENESS_INTERVAL without either the container is checked: a sandbox that died ends the
        step at once instead of at the timeout.
        """
        stdout = CappedBuffer(self.policy.max_stream_bytes)
        stderr = CappedBuffer(self.policy.max_stream_bytes)
        watch: DoneWatch | None = DoneWatch()
        started = time.monotonic()
        deadline = started + timeout
        timed_out = died = False
        try:
            stream.send(payload)
            while True:
                check_at = min(deadline, time.monotonic() + LIVENESS_INTERVAL)
                try:
                    item = stream.next_chunk(check_at)
                except DeadlineExceeded:
                    if time.monotonic() >= deadline:
                        raise
                    if not self.engine.is_running(container_id)[0]:
                        died = True
                        break
                    continue
                if item is None:
                    break
                kind, chunk = item
                (stdout if kind == STDOUT else stderr).add(chunk)
                if watch is None:
                    continue
                watch.add(kind, chunk)
                if not watch.should_ask():
                    continue
                seconds = time.monotonic() - started
                watch.asked()
                answer = self._ask_warden(warden)
                if answer.startswith("collecting"):
                    stdout.drop_tail(watch.marker_length(STDOUT))
                    stderr.drop_tail(watch.marker_length(STDERR))
                    status = answer.partition(" ")[2]
                    return ExecOutcome(
                        stdout,
                        stderr,
                        False,
                        seconds,
                        collecting=True,
                        done_status=int(status) if status.isdigit() else None,
                    )
                if answer != "busy":
                    # The warden cannot collect: the one-shot collector will, after the runner's
                    # exit (it waits for its stdin to close once done).
                    watch = None
                    stream.close_input()
        except DeadlineExceeded:
            timed_out = True
        except OSError:
            pass  # the runner went away while we wrote: its exit status tells why
        return ExecOutcome(stdout, stderr, timed_out, time.monotonic() - started, died)

    @staticmethod
    def _ask_warden(warden: Warden) -> str:
        """`collecting [status]`, `busy` (the code printed the markers itself; read on), or why
        the warden cannot collect."""
        try:
            answer = warden.ask()
        except WardenGone as exc:
            log.warning("output warden gone; collecting the one-shot way", error=str(exc))
            return "gone"
        if answer == "busy":
            return answer
        if not answer.startswith("collecting"):
            log.info("output warden cannot collect; collecting the one-shot way", answer=answer[:200])
        return answer

    def _collect_from_warden(
        self, warden: Warden, container_id: str, destination: Path
    ) -> Collected:
        """Receive the outputs the warden is sending (it answered `collecting`)."""
        started = time.monotonic()
        deadline = started + self.policy.collect_timeout
        receiver = OutputReceiver(
            destination, self.policy.max_output_files, self.policy.output_size_bytes
        )
        problems = []
        try:
            receiver.receive(FramesReader(warden.tar_frames(deadline)))
            report = warden.report(deadline)
        except DeadlineExceeded:
            problems.append(SkippedOutput("(output folder)", "collection took too long"))
            report = {}
        finally:
            warden.close()
        return self._collected(container_id, receiver, report, problems, started)

    def _collect(self, container_id: str, destination: Path, reap_first: bool = False) -> Collected:
        started = time.monotonic()
        result = Collected()
        if reap_first:
            self._reap_code_processes(container_id)
        running, result.container_oom = self.engine.is_running(container_id)
        if not running:
            result.sandbox_stopped = True
            result.container_oom = self._stopped_by_oom(container_id, result.container_oom)
            result.skipped.append(
                SkippedOutput("(output folder)", "lost: the sandbox stopped before collection")
            )
            result.seconds = time.monotonic() - started
            return result
        try:
            stream = self.engine.exec_attach(container_id, **self.policy.collector_exec())
        except DockerException as exc:
            # e.g. the code exhausted the process limit, so not even the collector can start
            running, oom = self.engine.is_running(container_id)
            if not running:
                result.sandbox_stopped = True
                result.container_oom = self._stopped_by_oom(container_id, oom)
            self.engine.kill(container_id)
            reason = getattr(exc, "explanation", None) or str(exc)
            result.skipped.append(
                SkippedOutput("(output folder)", f"not collected: {str(reason)[:200]}")
            )
            result.seconds = time.monotonic() - started
            return result
        receiver = OutputReceiver(
            destination, self.policy.max_output_files, self.policy.output_size_bytes
        )
        reader = FramesReader(self._collector_frames(stream))
        too_slow = []
        try:
            receiver.receive(reader)
            reader.drain()
        except DeadlineExceeded:
            too_slow.append(SkippedOutput("(output folder)", "collection took too long"))
        finally:
            stream.close()
        report = self._collector_report(bytes(reader.stderr))
        return self._collected(container_id, receiver, report, too_slow, started, trust=False)

    def _collected(
        self,
        container_id: str,
        receiver: OutputReceiver,
        report: dict,
        problems: list[SkippedOutput],
        started: float,
        trust: bool = True,
    ) -> Collected:
        """A collection's result from what arrived and the collector's report.

        trust: a report proves the sandbox alive (the warden, which runs only once the code is
        over). The one-shot collector runs after anything, a sandbox dying under it included, so
        with it the engine is asked as well.
        """
        result = Collected()
        result.files = receiver.files
        result.skipped = problems + [
            SkippedOutput(safe_filename(str(item.get("name", "?"))), str(item.get("reason", "")))
            for item in report.get("skipped", [])
            if isinstance(item, dict)
        ] + receiver.skipped
        more = report.get("skipped_more", 0)
        if isinstance(more, int) and more > 0:
            result.skipped.append(SkippedOutput(f"(+{more} more)", "skipped for the same reasons"))
        oom = report.get("oom_kills", 0)
        result.oom_kills = oom if isinstance(oom, int) else 0
        if report and trust:
            result.seconds = time.monotonic() - started
            return result
        # The warden keeps a healthy sandbox running; if it stopped meanwhile it died under the
        # code (gVisor with exhausted processes), and the runner's exit status was not the code's.
        running, container_oom = self.engine.is_running(container_id)
        # The collector always reports unless the sandbox died under it; gVisor tears a sandbox
        # down in steps, so give the engine a moment to see the death.
        settle = time.monotonic() + 3
        while running and not report and time.monotonic() < settle:
            time.sleep(0.1)
            running, container_oom = self.engine.is_running(container_id)
        if not running:
            result.sandbox_stopped = True
            result.container_oom = self._stopped_by_oom(container_id, container_oom)
        result.seconds = time.monotonic() - started
        return result

    def _reap_code_processes(self, container_id: str, wait: float = 5.0) -> None:
        """After a timeout: stop the code's processes with a shell before the collector starts."""
        try:
            stream = self.engine.exec_attach(container_id, **self.policy.reaper_exec())
        except DockerException:
            return  # the collector's own reaping, or killing the container, still follows
        try:
            for _ in stream.frames(time.monotonic() + wait):
                pass
        except DeadlineExceeded:
            pass
        finally:
            stream.close()

    def _collector_frames(self, stream: ExecStream):
        """The collector's frames: the first within collector_start_timeout, all within collect_timeout."""
        started = time.monotonic()
        first = stream.next_chunk(started + self.policy.collector_start_timeout)
        if first is not None:
            yield first
            yield from stream.frames(started + self.policy.collect_timeout)

    def _stopped_by_oom(self, container_id: str, oom: bool, wait: float = 1.0) -> bool:
        """Whether a sandbox that stopped mid-run was killed for memory.

        The engine may record the OOM kill a moment after the exit, so wait briefly for it. A
        sandbox killed by SIGKILL (exit 137) that nobody here killed was killed by the kernel's
        OOM killer: code inside cannot signal gVisor's kernel.
        """
        end = time.monotonic() + wait
        while True:
            state = self.engine.state(container_id)
            if oom or state.get("OOMKilled") or state.get("ExitCode") == 137:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.1)

    @staticmethod
    def _collector_report(raw: bytes) -> dict:
        try:
            report = json.loads(raw.decode("utf-8", errors="replace") or "{}")
        except ValueError:
            return {}
        return report if isinstance(report, dict) else {}

    async def count_leftovers(self) -> int:
        """How many containers reap_leftovers would remove now (for dry runs)."""
        try:
            return len(await self.engine.call(self._leftover_ids))
        except (EngineUnavailable, DockerException) as exc:
            log.warning("leftover count skipped", error=str(exc)[:200])
            return 0

    def _leftover_ids(self) -> list[str]:
        now = time.time()
        found = []
        for info in self.engine.client.api.containers(
            all=True, filters=self.policy.ownership_filter()
        ):
            owner = (info.get("Labels") or {}).get(OWNER_LABEL, "")
            too_old = now - info.get("Created", now) > self.leftover_age
            if too_old or not owner or owner_is_dead(owner):
                found.append(info["Id"])
        return found

    def _reap_blocking(self) -> int:
        removed = 0
        for container_id in self._leftover_ids():
            self.engine.remove(container_id)
            removed += 1
        if removed:
            log.info("reaped leftover sandbox containers", count=removed)
        return removed


def _top_level_files(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []
