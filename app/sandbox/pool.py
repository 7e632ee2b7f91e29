"""WarmPool: sandbox containers started ahead of time, each serving exactly one run.

A warm container is started by the same ContainerStarter as a cold one (app/sandbox/starter.py),
with the full policy and its runner's heavy imports preloaded: it waits on stdin for the code. Its
output warden (the main process, app/sandbox/warden.py) is attached and ready too. It was created
before the user was known, so its input mount is its own empty staging folder, DATA_DIR/pool/<pool
id>/ (the staging root the pool is given), mounted read-only; when a run takes it, the request's
files are placed there from the host side
(hard links when DATA_DIR is one filesystem, copies otherwise). New files in a bind-mounted folder
are visible inside under runc and under runsc (gVisor revalidates bind mounts, its default).

The pool never makes a run wait: `take()` returns a ready container or None, and the run then
starts cold. A background task keeps `size` containers ready, replaces those older than `max_age`
or whose runner died, and removes everything on `close()`. Containers of dead processes are reaped
by the runner at start-up (same labels as cold runs); orphaned staging folders here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from app.sandbox.engine import Engine, EngineError, EngineUnavailable
from app.sandbox.leftovers import LeftoverReaper
from app.sandbox.names import POOL_LABEL
from app.sandbox.policy import SandboxPolicy
from app.sandbox.starter import ContainerStarter, Sandbox

__all__ = ["POOL_LABEL", "PoolStats", "StagingError", "WarmContainer", "WarmPool", "remove_sandbox"]

MAX_PARALLEL_STARTS = 2
HEALTH_INTERVAL = 10.0
MAX_BACKOFF = 10.0
# Beside a warm container's staging folder: the folder its session snapshot is placed in.
SESSION_SUFFIX = "-session"
# A staging folder younger than this may belong to a container still being created elsewhere.
ORPHAN_GRACE = 120.0
log = structlog.get_logger(__name__)


class StagingError(ValueError):
    """A request's file cannot be placed into a warm container's input folder."""


@dataclass
class WarmContainer(Sandbox):
    pool_id: str = ""

    @property
    def input_dir(self) -> Path:
        assert self.staging is not None, "a warm container always has its staging folder"
        return self.staging

    @property
    def state_dir(self) -> Path:
        return self.input_dir.with_name(self.input_dir.name + SESSION_SUFFIX)

    def stage(self, source_dir: Path, filenames: Iterable[str]) -> None:
        """Place the request's files into the (read-only mounted) input folder, by filename."""
        for filename in filenames:
            if not filename or "/" in filename or "\0" in filename or filename in (".", ".."):
                raise StagingError(f"unsafe input file name {filename!r}")
            source = source_dir / filename
            try:
                info = source.lstat()
            except FileNotFoundError:
                continue  # the code sees the same FileNotFoundError as in a cold run
            if not stat.S_ISREG(info.st_mode):
                continue  # never expose a link's target or a special file
            self.place(source, filename)

    def place(self, source: Path, filename: str, folder: Path | None = None) -> None:
        """One regular file into the input folder (or `folder`): a hard link, or a copy across
        filesystems."""
        target = (folder or self.input_dir) / filename
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            _copy_no_follow(source, target)


def _top_level_files(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _copy_no_follow(source: Path, target: Path) -> None:
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    os.chmod(target, 0o644)


async def remove_sandbox(
    engine: Engine,
    container_id: str,
    staging: Path | None,
    leftovers: LeftoverReaper | None = None,
) -> None:
    """Remove a run's container and, for a warm one, its staging folder; never raises. A
    failed removal is logged once and left to the reaper (`leftovers`); the sandbox ends by
    itself meanwhile, its warden having lost the host's attach."""
    try:
        await engine.call(engine.remove, container_id)
    except (EngineUnavailable, EngineError) as exc:
        short = container_id[:12]
        log.warning("sandbox removal failed; reaped later", container=short, error=str(exc)[:200])
        if leftovers is not None:
            leftovers.remember(container_id)
    if staging is not None:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        await asyncio.to_thread(
            shutil.rmtree, staging.with_name(staging.name + SESSION_SUFFIX), True
        )


@dataclass
class PoolStats:
    started: int = 0
    taken: int = 0
    missed: int = 0
    recycled: int = 0
    failed_starts: int = 0


class WarmPool:
    def __init__(
        self,
        policy: SandboxPolicy,
        engine: Engine,
        *,
        size: int,
        max_age: float,
        staging_root: Path,
    ) -> None:
        self.policy = policy
        self.engine = engine
        self.size = size
        self.max_age = max_age
        self.staging_root = staging_root
        self.stats = PoolStats()
        self.starter = ContainerStarter(policy, engine)
        self._idle: deque[WarmContainer] = deque()
        self._starting: set[asyncio.Task] = set()
        self._removing: set[asyncio.Task] = set()
        self._filler: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False
        self._failures = 0
        self.leftovers: LeftoverReaper | None = None
        """The runner's reaper: told of failed removals, and run when a start succeeds after
        failures (the engine is back), so an outage leaves nothing behind for long."""

    @property
    def ready(self) -> int:
        return len(self._idle)

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
        while self._idle:
            warm = self._idle.popleft()
            fresh = time.monotonic() - warm.ready_at < self.max_age
            if fresh and warm.is_quiet():
                self.stats.taken += 1
                # The replacement starts when this run is over (`replenish`): its imports would
                # otherwise compete for the CPU with the run being waited for.
                return warm
            self._discard(warm)
        self.stats.missed += 1
        self._poke()
        log.info("no warm container ready; starting a cold one")
        return None

    async def take_with_files(
        self, source_dir: Path | None, filenames: list[str], state: Path | None = None
    ) -> WarmContainer | None:
        """`take()`, with the run's files (and its session's snapshot) staged into the
        container's input folder; None (the run starts cold) when none is ready or the files
        cannot be placed."""
        warm = self.take()
        if warm is None or (source_dir is None and state is None):
            return warm
        if source_dir is not None and not filenames:
            # No manifest: the code sees the folder's files, as a cold run does.
            filenames = await asyncio.to_thread(_top_level_files, source_dir)
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
        want = min(self.size, count if count is not None else self.size)
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
        await asyncio.gather(*self._starting, return_exceptions=True)
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
            missing = self.size - len(self._idle) - len(self._starting)
            for _ in range(max(0, min(missing, MAX_PARALLEL_STARTS - len(self._starting)))):
                task = asyncio.get_running_loop().create_task(self._start_one())
                self._starting.add(task)
                task.add_done_callback(self._starting.discard)
                task.add_done_callback(lambda _t: self._poke())
            try:
                await asyncio.wait_for(wake.wait(), timeout=HEALTH_INTERVAL)
            except TimeoutError:
                pass

    async def _start_one(self) -> None:
        try:
            warm = await self.engine.call(self._start_blocking)
        except Exception as exc:
            self._failures += 1
            self.stats.failed_starts += 1
            log.warning("warm container failed to start", error=str(exc)[:300])
            return
        if self._failures:
            log.info("warm container started again; the pool refills", after=self._failures)
            if self.leftovers is not None:
                await self.leftovers.reap()
        self._failures = 0
        self.stats.started += 1
        if self._closed:
            self._discard(warm)
        else:
            self._idle.append(warm)

    def _start_blocking(self) -> WarmContainer:
        pool_id = uuid.uuid4().hex[:12]
        input_dir = self.staging_root / pool_id
        state_dir = (
            input_dir.with_name(pool_id + SESSION_SUFFIX) if self.policy.keeps_state else None
        )
        for folder in (input_dir, state_dir):
            if folder is not None:
                folder.mkdir(parents=True, mode=0o755)
                os.chmod(folder, 0o755)  # readable by the code's uid whatever the umask

        def args_for(code_uid: int) -> dict:
            return self.policy.container_args(
                run_id=f"warm-{pool_id}",
                user_id="",
                code_uid=code_uid,
                input_dir=input_dir,
                pool_id=pool_id,
                state_dir=state_dir,
            )

        try:
            started = self.starter.start_blocking(args_for, self.policy.warm_preload)
        except BaseException:
            for folder in (input_dir, state_dir):
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
            raise
        return WarmContainer(
            started.container_id,
            started.stream,
            started.warden,
            started.code_uid,
            input_dir,
            pool_id=pool_id,
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
            remove_sandbox(self.engine, warm.container_id, warm.staging, self.leftovers)
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
        now = time.time()
        for folder in root.iterdir():
            try:
                old = now - folder.lstat().st_mtime > ORPHAN_GRACE
            except OSError:
                continue
            if folder.name.removesuffix(SESSION_SUFFIX) not in alive and old:
                shutil.rmtree(folder, ignore_errors=True)
