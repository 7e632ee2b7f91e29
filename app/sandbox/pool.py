"""WarmPool: sandbox containers started ahead of time, each serving exactly one run.

A warm container is started by the same ContainerStarter as a cold one (app/sandbox/starter.py),
with the full policy, its warden attached and its runner's heavy imports preloaded, waiting on
stdin for the code. Created before the user was known, its input mount is its own empty staging
folder, DATA_DIR/pool/<pool id>/, read-only, with its session snapshot's folder beside it; a run's
files (and snapshot) are placed there when it takes the container (staging.py; runc and runsc
both show files added to a bind mount later).

`take()` returns a ready container or None (the run starts cold); `acquire()` may also wait for a
container that is almost ready when that beats a cold start. A background task keeps the target
ready (app/sandbox/pool_sizing.py: `size` to the maximum and the memory bound, with the arrival
rate; refills yield to runs), replaces containers too old or whose runner died, removes idle
surplus, and everything on `close()`. The runner reaps dead processes' containers; orphaned
staging folders are removed here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from app.sandbox.engine import Engine, EngineError, EngineUnavailable
from app.sandbox.leftovers import LeftoverReaper
from app.sandbox.names import POOL_LABEL
from app.sandbox.policy import SandboxPolicy
from app.sandbox.pool_sizing import SHRINK_AFTER, PoolBounds, PoolSizer
from app.sandbox.staging import (
    StagingError,
    WarmContainer,
    make_staging,
    remove_orphans,
    remove_staging,
    top_level_files,
)
from app.sandbox.starter import ContainerStarter

__all__ = ["POOL_LABEL", "PoolStats", "StagingError", "WarmContainer", "WarmPool", "remove_sandbox"]

HEALTH_INTERVAL = 10.0
MAX_BACKOFF = 10.0
log = structlog.get_logger(__name__)


async def remove_sandbox(
    engine: Engine,
    container_id: str,
    staging: Path | None,
) -> None:
    """Remove a run's container and, for a warm one, its staging folder; never raises. A
    failed removal is logged once and left to the reaper (the engine keeps it in
    `Engine.unremoved`); the sandbox ends by itself meanwhile, its warden having lost the host's
    attach."""
    try:
        await engine.call(engine.remove, container_id)
    except (EngineUnavailable, EngineError) as exc:
        short = container_id[:12]
        log.warning("sandbox removal failed; reaped later", container=short, error=str(exc)[:200])
    if staging is not None:
        await asyncio.to_thread(remove_staging, staging)


@dataclass
class PoolStats:
    started: int = 0
    taken: int = 0
    missed: int = 0
    recycled: int = 0
    failed_starts: int = 0
    waited: int = 0
    """Runs that waited for an almost ready container (counted in `taken` too)."""
    undeferred: int = 0
    """Starts made without the deferred imports: they would not have had the time to finish."""
    shrunk: int = 0


class WarmPool:
    def __init__(
        self,
        policy: SandboxPolicy,
        engine: Engine,
        *,
        size: int,
        max_age: float,
        staging_root: Path,
        max_size: int | None = None,
        memory_budget: int = 0,
        sizer: PoolSizer | None = None,
    ) -> None:
        self.policy = policy
        self.engine = engine
        self.size = size
        self.max_age = max_age
        self.staging_root = staging_root
        self.stats = PoolStats()
        self.starter = ContainerStarter(policy, engine)
        bounds = PoolBounds(
            size=size,
            max_size=max(size, max_size if max_size is not None else size),
            memory_budget=memory_budget,
            container_memory=policy.memory_bytes,
        )
        self.sizer = sizer or PoolSizer(bounds)
        self.runs_active: Callable[[], int] = lambda: 0
        """How many runs hold a run slot now (set by the runner): refills yield to them."""
        self.package_root: Callable[[], Path | None] | None = None
        """The package folder a new container mounts (set by the runner; on the engine thread)."""
        self._idle: deque[WarmContainer] = deque()
        # Each start under way, with when it began (a waiting run judges by its age).
        self._starting: dict[asyncio.Task, float] = {}
        self._waiters: deque[asyncio.Future[WarmContainer]] = deque()
        self._removing: set[asyncio.Task] = set()
        self._filler: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False
        self._failures = 0
        self.leftovers: LeftoverReaper | None = None
        """The runner's reaper, run when a start succeeds after failures (the engine is back)."""

    @property
    def ready(self) -> int:
        return len(self._idle)

    @property
    def starting(self) -> int:
        return len(self._starting)

    @property
    def target(self) -> int:
        """How many containers the pool keeps ready (or starting) now."""
        return self.sizer.target(len(self._idle) + len(self._starting))

    @property
    def max_size(self) -> int:
        return self.sizer.bounds.max_size

    def idle_ids(self) -> set[str]:
        """Containers waiting in the pool (they belong there, not to any run)."""
        return {warm.container_id for warm in self._idle}

    async def start(self) -> None:
        if self._filler is not None or self.size <= 0:
            return
        self._wake = asyncio.Event()
        await asyncio.to_thread(self._remove_orphaned_staging)
        self._filler = asyncio.get_running_loop().create_task(self._fill_loop())

    def take(self) -> WarmContainer | None:
        """A ready container for one run, or None (the caller then starts a cold one)."""
        self.sizer.arrival()
        warm = self._take_ready()
        if warm is None:
            self._missed()
        return warm

    async def acquire(self, uses_preload: Callable[[], bool] = bool) -> WarmContainer | None:
        """`take()`, or the next container to be ready when waiting beats a cold start (pool_sizing;
        `uses_preload()`, asked only then, default False: a cold start would import a preload
        too); None: start cold."""
        self.sizer.arrival()
        warm = self._take_ready()
        if warm is None:
            age = self._unpromised_start_age()
            seconds = self.sizer.wait_for(age, age is not None and uses_preload())
            if seconds is not None:
                warm = await self._wait_for_start(seconds)
        if warm is None:
            self._missed()
        return warm

    def note_cold_start(self, seconds: float) -> None:
        """A cold run's container took `seconds` to be ready (what waiting is weighed against)."""
        self.sizer.cold_started(seconds)

    def _take_ready(self) -> WarmContainer | None:
        while self._idle:
            warm = self._idle.popleft()
            fresh = time.monotonic() - warm.ready_at < self.max_age
            if fresh and warm.is_quiet():
                self.stats.taken += 1
                # Refills start now as far as the runs leave cores free (`_fill_loop`).
                self._poke()
                return warm
            self._discard(warm)
        return None

    def _missed(self) -> None:
        self.stats.missed += 1
        self._poke()
        log.info("no warm container ready; starting a cold one")

    def _unpromised_start_age(self) -> float | None:
        """The age of the oldest start that no waiting run has been promised, None if none."""
        began = sorted(self._starting.values())
        if len(began) <= len(self._waiters):
            return None
        return time.monotonic() - began[len(self._waiters)]

    async def _wait_for_start(self, seconds: float) -> WarmContainer | None:
        waiter: asyncio.Future[WarmContainer] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._poke()  # the start it waits for is its own now: the runs after it need another
        handed = False
        try:
            warm = await asyncio.wait_for(asyncio.shield(waiter), seconds)
            handed = warm.waited_for = True  # marked only once the run keeps it
            self.stats.waited += 1
            return warm
        except TimeoutError:
            return None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if not waiter.done():
                waiter.cancel()
            elif not handed and not waiter.cancelled():
                # Handed over just as the wait ended (timeout or cancellation): back it goes.
                self.stats.taken -= 1
                self._idle.appendleft(waiter.result())

    def _deliver(self, warm: WarmContainer) -> None:
        """A new container goes to the first run waiting for one, else into the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.stats.taken += 1
                waiter.set_result(warm)
                return
        self._idle.append(warm)

    async def take_with_files(
        self,
        source_dir: Path | None,
        filenames: list[str],
        state: Path | None = None,
        uses_preload: Callable[[], bool] = bool,
    ) -> WarmContainer | None:
        """`acquire()`, with the run's files (and session snapshot) staged into its input folder;
        None (the run starts cold) when none is ready or the files cannot be placed."""
        warm = await self.acquire(uses_preload)
        if warm is None or (source_dir is None and state is None):
            return warm
        if source_dir is not None and not filenames:
            # No manifest: the code sees the folder's files, as a cold run does.
            filenames = await asyncio.to_thread(top_level_files, source_dir)
        try:
            if source_dir is not None:
                await asyncio.to_thread(warm.stage, source_dir, filenames)
            if state is not None:
                await asyncio.to_thread(warm.place, state, "state", warm.state_dir)
        except (OSError, StagingError) as exc:
            log.warning("warm container could not take the files", error=str(exc)[:200])
            self.dispose(warm)
            return None
        except BaseException:  # cancelled while staging: the container must not be lost
            self.dispose(warm)
            raise
        return warm

    async def wait_ready(self, count: int | None = None, timeout: float = 120.0) -> bool:
        """Wait until `count` (default: size) containers are ready; False on timeout."""
        want = min(self.max_size, count if count is not None else self.size)
        deadline = time.monotonic() + timeout
        while len(self._idle) < want:
            if self._closed or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        """Stop refilling, then remove every container the pool holds or is starting."""
        self._closed = True
        if self._filler is not None:
            self._filler.cancel()
            await asyncio.gather(self._filler, return_exceptions=True)
        # Starts run to completion (cancelling would leave a container behind) and then
        # see the pool is closed and discard what they made.
        await asyncio.gather(*list(self._starting), return_exceptions=True)
        while self._idle:
            self._discard(self._idle.popleft())
        await asyncio.gather(*self._removing, return_exceptions=True)

    def replenish(self) -> None:
        """Start replacements for taken containers (called when their runs are over)."""
        self._poke()

    def dispose(self, warm: WarmContainer) -> None:
        """Hand a container back for removal (used when a run could not use it)."""
        self._discard(warm)

    # Filling

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _fill_loop(self) -> None:
        last_health = time.monotonic()
        wake = self._wake
        assert wake is not None, "started by start()"
        while not self._closed:
            wake.clear()
            if time.monotonic() - last_health >= HEALTH_INTERVAL:
                await self._health_check()
                last_health = time.monotonic()
            if self._failures and not self._starting:
                # Back off after failures, so a broken engine or image is not hammered, but try
                # often enough to refill soon after the engine is back.
                await asyncio.sleep(min(MAX_BACKOFF, 0.5 * 2 ** min(self._failures, 6)))
            held = len(self._idle) + len(self._starting)
            target = self.sizer.target(held)
            surplus = self._shrink(target)
            # A run waiting here for a start holds its slot but no CPU: it is not a run to yield to.
            running = max(0, self.runs_active() - len(self._waiters))
            allowed = self.sizer.parallel_starts(running, len(self._idle))
            missing = target - held + len(self._waiters)
            for _ in range(max(0, min(missing, allowed - len(self._starting)))):
                defer = self.policy.warm_defer
                ahead = len(self._idle) + len(self._starting) - len(self._waiters)
                if defer and not self.sizer.defers(ahead):
                    defer = ()
                    self.stats.undeferred += 1
                task = asyncio.get_running_loop().create_task(self._start_one(defer))
                self._starting[task] = time.monotonic()
                task.add_done_callback(lambda t: self._starting.pop(t, None))
                task.add_done_callback(lambda _t: self._poke())
            # Woken by a take, a finished start or a finished run; the timeout re-reads the
            # arrival rate and the runs (a refill held back for them starts when they are over).
            try:
                busy = missing > 0 or surplus
                await asyncio.wait_for(wake.wait(), timeout=1.0 if busy else HEALTH_INTERVAL)
            except TimeoutError:
                pass

    def _shrink(self, target: int) -> bool:
        """Remove surplus containers idle long enough (oldest first); whether a surplus is left."""
        surplus = len(self._idle) + len(self._starting) - target
        now = time.monotonic()
        while surplus > 0 and self._idle and now - self._idle[0].ready_at >= SHRINK_AFTER:
            self.stats.shrunk += 1
            self._discard(self._idle.popleft())
            surplus -= 1
        return surplus > 0

    async def _start_one(self, defer: tuple[str, ...]) -> None:
        began = time.monotonic()
        try:
            warm = await self.engine.call(self._start_blocking, defer)
        except Exception as exc:
            self._starting.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._failures += 1
            self.stats.failed_starts += 1
            log.warning("warm container failed to start", error=str(exc)[:300])
            return
        if self._failures:
            log.info("warm container started again; the pool refills", after=self._failures)
            if self.leftovers is not None:
                await self.leftovers.reap()
        # Counted as starting no longer the moment it is ready, so it is never counted twice.
        self._starting.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        self._failures = 0
        self.stats.started += 1
        self.sizer.started(time.monotonic() - began)
        if self._closed:
            self._discard(warm)
        else:
            self._deliver(warm)

    def _start_blocking(self, defer: tuple[str, ...]) -> WarmContainer:
        pool_id = uuid.uuid4().hex[:12]
        input_dir, state_dir = make_staging(self.staging_root, pool_id, self.policy.keeps_state)

        package_root = self.package_root() if self.package_root is not None else None

        def args_for(code_uid: int) -> dict:
            return self.policy.container_args(
                run_id=f"warm-{pool_id}",
                user_id="",
                code_uid=code_uid,
                input_dir=input_dir,
                pool_id=pool_id,
                package_root=package_root,
                state_dir=state_dir,
            )

        try:
            started = self.starter.start_blocking(args_for, self.policy.warm_preload, defer)
        except BaseException:
            remove_staging(input_dir)
            raise
        return WarmContainer(
            started.container_id,
            started.stream,
            started.warden,
            started.code_uid,
            input_dir,
            pool_id=pool_id,
            package_root=package_root,
        )

    async def _health_check(self) -> None:
        for warm in list(self._idle):
            too_old = time.monotonic() - warm.ready_at >= self.max_age
            running = warm.is_quiet() and not too_old
            if running:
                try:
                    running, _ = await self.engine.call(self.engine.is_running, warm.container_id)
                except (EngineUnavailable, EngineError):
                    running = False
            if not running and warm in self._idle:
                self._idle.remove(warm)
                self.stats.recycled += 1
                log.info("warm container recycled", too_old=too_old)
                self._discard(warm)

    # Removal

    def _discard(self, warm: WarmContainer) -> None:
        warm.close()
        task = asyncio.get_running_loop().create_task(
            remove_sandbox(self.engine, warm.container_id, warm.staging)
        )
        self._removing.add(task)
        task.add_done_callback(self._removing.discard)

    async def remove_orphaned_staging(self) -> None:
        """The cleanup pass's sweep of this pool's folder (also done when the pool starts)."""
        await asyncio.to_thread(self._remove_orphaned_staging)

    def _remove_orphaned_staging(self) -> None:
        """Delete staging folders whose container no longer exists (a crashed process's)."""
        root = self.staging_root
        if not root.is_dir():
            return
        try:
            alive = {
                (info.get("Labels") or {}).get(POOL_LABEL)
                for info in self.engine.containers({"label": [POOL_LABEL]})
            }
        except (EngineUnavailable, EngineError) as exc:
            log.warning("staging cleanup skipped", error=str(exc)[:200])
            return
        remove_orphans(root, alive)
