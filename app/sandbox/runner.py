"""SandboxRunner: one short-lived, hardened container per code run. Its one public method, `run()`,
always returns a RunResult.

A run, top-down (docs/architecture.md, "One run"):

0. packages (not timed, outside a run slot): approved packages the code imports but the image
   lacks are installed by a separate install container (app/sandbox/packages) and mounted
   read-only into the run; a run that still dies on one of them is run once more.
1. acquire (not timed): a warm container from the pool, or a cold one started now
   (app/sandbox/starter.py); either way its warden and runner have said ready.
2. exec (timed): the code is handed over and read until it is over (app/sandbox/execution.py).
3. collect (not timed): the warden sends the outputs once it confirmed that nothing of the code
   is left, or they are dropped with the reason (app/sandbox/collection.py).
4. classify (app/sandbox/status.py), then dispose: the container is always removed, in the
   background once the runner is started; leftovers of dead owners are reaped
   (app/sandbox/leftovers.py).

A started runner (`await runner.start()`, as the bot does) keeps its warm pool filled and removes
containers after the result is returned; `await runner.close()` waits for those removals. Limits
are the policy's and the constructor's: nothing here reads settings.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from app.sandbox.collection import OutputCollector, collect_run
from app.sandbox.engine import Engine, EngineError, EngineUnavailable
from app.sandbox.environment import EnvironmentReader, SandboxEnvironment
from app.sandbox.execution import timed_exec
from app.sandbox.job import job_payload, state_problem
from app.sandbox.leftovers import LeftoverReaper
from app.sandbox.packages import PackageInstaller, PackagePlan
from app.sandbox.packages.detect import imports_in
from app.sandbox.packages.retry import package_fallback
from app.sandbox.policy import SandboxPolicy
from app.sandbox.pool import WarmContainer, WarmPool, remove_sandbox
from app.sandbox.result import RunRequest, RunResult, RunStatus, request_problem
from app.sandbox.service import SandboxStatus
from app.sandbox.sessions import SessionRun, SessionStates
from app.sandbox.slots import RunSlots
from app.sandbox.starter import ContainerStarter, Sandbox
from app.sandbox.status import ENGINE_RESTARTED, classify, explain, failure_message
from app.sandbox.summary import policy_summary

# Below this, a warm gVisor sandbox (its kernel, the preloaded runner, the warden) leaves the code
# little memory: the runner warns at start.
SMALL_GVISOR_MEMORY = 512 * 1024**2
log = structlog.get_logger(__name__)


class SandboxRunner:
    def __init__(
        self,
        policy: SandboxPolicy,
        engine: Engine,
        *,
        max_timeout: float,
        slots: RunSlots | None = None,
        leftover_age: float | None = None,
        packages: PackageInstaller | None = None,
        pool: WarmPool | None = None,
        sessions: SessionStates | None = None,
    ) -> None:
        self.policy = policy
        # None, or a policy that keeps no state: runs keep nothing (SESSION_STATE=false).
        self.sessions = sessions if policy.keeps_state else None
        self.engine = engine
        self.max_timeout = max_timeout
        self.slots = slots or RunSlots(4)
        self.packages = packages
        self.pool = pool
        if pool is not None:
            pool.runs_active = lambda: self.slots.running  # refills yield to runs
            if packages is not None:  # warm containers see the package cache: runs needing it too
                pool.package_root = packages.warm_package_root
        self.starter = ContainerStarter(policy, engine)
        self.collector = OutputCollector(policy, engine)
        self.environment = EnvironmentReader(policy, engine, packages)
        # Past this age a container is a leftover whoever made it: no run lives that long.
        self.leftovers = LeftoverReaper(
            policy,
            engine,
            leftover_age or (max_timeout + policy.collect_timeout + policy.install_timeout + 600),
        )
        # Told to the loader, so a missing-library error can say importing would install it.
        self._approved = packages.catalog.approved_imports() if packages is not None else {}
        self._preloaded = frozenset(name.split(".")[0] for name in policy.warm_preload)
        self._started = False
        self._removals: set[asyncio.Task] = set()
        if pool is not None:
            pool.leftovers = self.leftovers

    # Public API

    async def run(
        self, request: RunRequest, on_queued: Callable[[int], None] | None = None
    ) -> RunResult:
        run_id = uuid.uuid4().hex[:12]
        context = {"run_id": run_id, "user_id": request.user_id}
        if request.session_id:
            context["session_id"] = request.session_id
        with structlog.contextvars.bound_contextvars(**context):
            problem = request_problem(request, self.policy.max_code_bytes)
            if problem:
                log.info("run refused", reason=problem)
                return RunResult(run_id=run_id, status=RunStatus.ERROR, message=problem)
            timeout = min(request.timeout or self.max_timeout, self.max_timeout)
            plan = None
            if self.packages is not None:
                # Before the run and outside its timer (and outside a run slot); a session's
                # earlier imports too: the names it restores may come from those packages.
                earlier: frozenset[str] = frozenset()
                user = str(request.user_id)
                if self.sessions is not None and request.session_id:  # one small file
                    earlier = frozenset(self.sessions.imports(user, request.session_id))
                plan = await self.packages.prepare(request.code, run_id, user, earlier)

            async def attempts() -> RunResult:
                attempt = partial(self._queued_run, request, run_id, timeout, plan, on_queued)
                result = await attempt()
                if plan is None or self.packages is None:
                    return result
                user_id = str(request.user_id)
                return await package_fallback(self.packages, plan, result, attempt, run_id, user_id)

            if self.sessions is not None and request.session_id:
                # One run of a session at a time: each restores what the last one saved.
                async with self.sessions.lock(str(request.user_id), request.session_id):
                    result = await attempts()
            else:
                result = await attempts()
            log.info(
                "run finished",
                status=result.status.value,
                exit_code=result.exit_code,
                exec_seconds=round(result.exec_seconds, 3),
                setup_seconds=round(result.setup_seconds, 3),
                files=len(result.files),
            )
            return result

    async def reset_session(self, user_id: str, session_id: str) -> bool:
        """Forget a session's state (/reset); whether it had any."""
        if self.sessions is None or not session_id:
            return False
        return await asyncio.to_thread(self.sessions.reset, str(user_id), session_id)

    async def remove_expired_sessions(self, max_age_seconds: float) -> int:
        """Remove session states unused for `max_age_seconds` (FILE_EXPIRATION_HOURS)."""
        if self.sessions is None:
            return 0
        return await asyncio.to_thread(self.sessions.remove_expired, max_age_seconds)

    async def start(self) -> None:
        """Long-lived use (the bot, bench): reap leftovers, start the warm pool, remove in the
        background."""
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
        """Wait until every container removal (and clean-up) scheduled so far is done."""
        while self._removals:
            await asyncio.gather(*list(self._removals), return_exceptions=True)

    @property
    def waiting(self) -> int:
        return self.slots.waiting

    async def status(self) -> SandboxStatus:
        pool = self.pool
        try:
            await asyncio.wait_for(self.engine.call(self.engine.ping), 10)
            problem = ""
        except TimeoutError:
            problem = "the Docker engine did not answer within 10 s"
        except (EngineUnavailable, EngineError) as exc:
            problem = str(exc)[:300]
        return SandboxStatus(
            engine_problem=problem,
            where="in-process",
            running=self.slots.running,
            waiting=self.slots.waiting,
            capacity=self.slots.capacity,
            warm_ready=pool.ready if pool is not None and self._started else 0,
            warm_size=pool.size if pool is not None else 0,
            max_timeout=self.max_timeout,
        )

    async def describe_policy(self) -> dict[str, object]:
        return policy_summary(self.policy)

    async def describe_environment(self) -> SandboxEnvironment:
        return await self.engine.call(self.environment.describe, self.max_timeout)

    async def reap_leftovers(self) -> int:
        """Remove our containers whose owner process is gone, or that are older than any run."""
        return await self.leftovers.reap()

    async def count_leftovers(self) -> int:
        """How many containers reap_leftovers would remove now (for dry runs)."""
        return await self.leftovers.count()

    async def remove_orphaned_staging(self) -> None:
        """Remove warm staging folders whose container is gone (a crashed process's)."""
        if self.pool is not None:
            await self.pool.remove_orphaned_staging()

    async def remove_stale_packages(self, max_age_days: float) -> int | None:
        """Remove cached packages unused for `max_age_days` and other images' caches."""
        if self.packages is None:
            return None
        report = await self.packages.cleanup(max_age_days)
        return len(report.removed_entries) + len(report.removed_images)

    # Before the run

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

    # One container: acquire -> exec -> collect -> classify -> dispose

    async def _run_in_container(
        self,
        request: RunRequest,
        run_id: str,
        timeout: float,
        queue_seconds: float,
        plan: PackagePlan | None = None,
    ) -> RunResult:
        started = time.monotonic()
        base: dict[str, Any] = {
            "run_id": run_id,
            "timeout_seconds": timeout,
            "queue_seconds": queue_seconds,
        }
        packages = plan.mounts if plan is not None else {}
        session = None
        if self.sessions is not None and request.session_id:
            # On the loop: a mkdir and a stat (a thread's hop costs more on a busy host).
            session = self.sessions.open_run(str(request.user_id), request.session_id, run_id)
        acquired = False
        try:
            async with self._sandbox(request, run_id, packages, session) as sandbox:
                acquired = True
                payload = job_payload(
                    self.policy,
                    request,
                    self.policy.package_paths(packages),
                    self._approved,
                    session,
                )
                setup_seconds = time.monotonic() - started
                outcome = await self.engine.call(
                    timed_exec,
                    self.engine,
                    sandbox.container_id,
                    sandbox.stream,
                    sandbox.warden,
                    payload,
                    timeout,
                    self.policy.max_stream_bytes,
                    self.policy.state_seconds if session is not None else None,
                )
                collected, exit_code = await collect_run(
                    self.engine,
                    self.collector,
                    sandbox,
                    outcome,
                    Path(request.output_dir),
                    session.incoming if session is not None else None,
                )
        except Exception as exc:
            if session is not None:
                await asyncio.to_thread(shutil.rmtree, session.incoming, True)
            message = failure_message(exc, self.policy.image, during_run=acquired)
            log.warning("sandbox error", message=message)
            return RunResult(
                **base,
                status=RunStatus.SANDBOX_ERROR,
                setup_seconds=time.monotonic() - started,
                message=message,
            )
        notes: list[str] = []
        if session is not None and self.sessions is not None:
            problem = state_problem(outcome, self.policy.state_seconds)
            if collected.engine_stopped:
                problem = ENGINE_RESTARTED
            # What the code imports matters to the next run only when packages are installed.
            imports = imports_in(request.code) if self.packages is not None else set()
            try:  # on the loop, as open_run: a rename and a small read
                notes = self.sessions.commit(session, collected.state_files, problem, imports)
            finally:
                await self._later(asyncio.to_thread(self.sessions.discard, session))
            if outcome.save_overrun and outcome.code_status is not None:
                exit_code = outcome.code_status  # the code was over; only its saving was stopped
        if collected.engine_stopped:
            log.warning("sandbox error", message=ENGINE_RESTARTED)
            status, message = RunStatus.SANDBOX_ERROR, ENGINE_RESTARTED
        else:
            status = classify(
                timed_out=outcome.timed_out,
                exit_code=exit_code,
                oom_kills=collected.oom_kills,
                container_oom=collected.container_oom,
                sandbox_stopped=collected.sandbox_stopped,
            )
            message = explain(
                status, exit_code, timeout, self.policy.memory_bytes, collected.sandbox_stopped
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
            message=message,
            state_notes=tuple(notes),
            state_seconds=outcome.restore_seconds + outcome.save_seconds,
        )

    @asynccontextmanager
    async def _sandbox(
        self,
        request: RunRequest,
        run_id: str,
        packages: dict[str, Path],
        session: SessionRun | None = None,
    ) -> AsyncIterator[Sandbox]:
        """A ready sandbox for this run, warm when one is ready, cold otherwise; removed after."""
        state = session.restore_from() if session is not None else None
        # A warm container mounts the image's whole package folder (created before the code was
        # known); one made without it, or for an image since rebuilt, cannot serve packages.
        warm = None
        if not packages or (self.pool is not None and self.pool.package_root is not None):
            warm = await self._take_warm(request, state)
            if warm is not None and not warm.serves(packages):
                assert self.pool is not None
                self.pool.dispose(warm)
                warm = None
        if warm is not None:
            log.info("warm container taken", container=warm.container_id[:12])
            try:
                yield warm
            finally:
                warm.close()
                await self._dispose(warm.container_id, warm.staging)
            return
        # A manifest mounts only its files; a request with a folder and no manifest, the folder.
        names = [f.filename for f in request.files] if request.files else None

        def args_for(code_uid: int) -> dict:
            return self.policy.container_args(
                run_id=run_id,
                user_id=str(request.user_id),
                code_uid=code_uid,
                input_dir=request.input_dir,
                input_files=names,
                packages=packages,
                state_file=state,
            )

        cold_began = time.monotonic()
        container_id, attached, code_uid = await self.starter.create(args_for)
        try:
            sandbox = await self.starter.start_processes(container_id, attached, code_uid)
            if self.pool is not None:
                self.pool.note_cold_start(time.monotonic() - cold_began)
            try:
                yield sandbox
            finally:
                sandbox.close()
        finally:
            await self._dispose(container_id, None)

    async def _take_warm(self, request: RunRequest, state: Path | None) -> WarmContainer | None:
        """A warm container holding the request's files and snapshot; None: start a cold one."""
        if self.pool is None or not self._started:
            return None
        if request.input_dir is not None:
            self.policy.host_path(request.input_dir)  # same rule as a cold mount: DATA_DIR only
        code, preloaded = request.code, self._preloaded
        return await self.pool.take_with_files(
            Path(request.input_dir) if request.input_dir is not None else None,
            [f.filename for f in request.files],
            state,
            # Would a cold container import what a warm one preloaded? (A snapshot: mostly frames.)
            uses_preload=lambda: state is not None or not preloaded.isdisjoint(imports_in(code)),
        )

    async def _dispose(self, container_id: str, staging: Path | None) -> None:
        """Remove a run's container (and warm staging folder): off the reply's path when started."""
        if self.pool is not None:
            self.pool.replenish()
        await self._later(remove_sandbox(self.engine, container_id, staging))

    async def _later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Clean-up off the reply's path once started (`wait_removals` and `close` wait for it);
        before that, at once."""
        if not self._started:
            await asyncio.shield(work)
            return
        task = asyncio.get_running_loop().create_task(work)
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)
