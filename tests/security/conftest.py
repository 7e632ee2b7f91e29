"""The adversarial battery: every promise of docs/security.md ("Security model") attacked in a real container.

Each test runs under every runtime the engine has: runc always, runsc (gVisor) when `docker info`
lists it. Limits are shrunk so attacks hit them fast. Every attack goes through `attack.run()`,
which also checks that the host stayed healthy: the run ended within its limit, no container of
this test instance is left, the test process (the bot's side) stayed within a memory bound, and
nothing the code wrote reached the host beyond the output caps.
"""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from integration.conftest import data_dir, engine, input_dir, make_request, runner  # noqa: F401
from integration.test_packages import install_containers  # noqa: F401 (install battery)

from app.config import Settings
from app.sandbox import RunResult, RunStatus, SandboxRunner

pytestmark = pytest.mark.docker

RUNTIMES = ("runc", "runsc")
# Setup (container start) plus collection may take this long on a busy 2-core machine, gVisor
# included; a run that takes longer than its timeout plus this has hung somewhere.
OVERHEAD_BUDGET = 30.0
# Restoring and saving a session's state each have this bound, outside the timeout.
STATE_SECONDS = 5.0
# The bot process may never hold more than this, however much the code prints or writes.
HOST_RSS_LIMIT = 600 * 1024**2
# Nor may its event loop be held this long by what it reads from a sandbox.
LOOP_STALL_LIMIT = 5.0

# Small, so memory attacks hit the limit fast, yet above a warm gVisor sandbox's baseline (about
# 170 MiB: gVisor's own kernel, the runner with pandas and matplotlib loaded, the warden), so
# attacks that are not about memory (spinning forks, say) are not ended by it instead.
MEMORY = "384m"
OUTPUT_SIZE = 8 * 1024**2
STREAM_CAP = 64 * 1024


def _registered_runtimes() -> list[str]:
    client = docker.from_env()
    try:
        return sorted((client.info().get("Runtimes") or {}).keys())
    finally:
        client.close()


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request) -> str:
    if request.param != "runc":
        registered = _registered_runtimes()
        if request.param not in registered:
            pytest.skip(
                f"the Docker engine has no {request.param} runtime (docker info lists: "
                f"{', '.join(registered)}); register gVisor as docs/security.md, gVisor says"
            )
    return request.param


@pytest.fixture(scope="session")
def settings(data_dir, runtime):  # noqa: F811
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        sandbox_runtime=runtime,
        sandbox_instance=f"sec-{runtime}-{uuid.uuid4().hex[:8]}",
        code_execution_timeout=45,  # the most a test asks for: the whole-filesystem hunts
        sandbox_memory=MEMORY,
        sandbox_pids_limit=64,
        sandbox_tmp_size="16m",
        sandbox_output_size=OUTPUT_SIZE,
        sandbox_max_output_bytes=STREAM_CAP,
        sandbox_max_output_files=20,
        sandbox_max_concurrent_runs=4,
        # A hostile snapshot may hold its restore this long beside the run's own timeout.
        session_state_timeout=STATE_SECONDS,
    )


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def folder_bytes(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


class LoopWatch:
    """Measures how long the event loop is held: the host must parse what it reads off it."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self, tick: float = 0.05) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            self.longest = max(self.longest, now - last - tick)
            last = now


@dataclass
class Attack:
    runner: SandboxRunner
    engine: object
    make_request: object
    runtime: str
    data_dir: Path
    loop_stall: float = 0.0
    """The longest the event loop went without running during the last attack (seconds)."""

    async def run(
        self, code: str, *, timeout: float = 5.0, alone: bool = True, **kwargs
    ) -> RunResult:
        """Run an attack; `alone=False` when another run of this test may still be going."""
        request = self.make_request(code, timeout=timeout, **kwargs)
        started = time.monotonic()
        watch = LoopWatch()
        watcher = asyncio.create_task(watch.run())
        try:
            result = await self.runner.run(request)
        finally:
            watcher.cancel()
            self.loop_stall = watch.longest
        self.check_host(result, request, timeout, time.monotonic() - started)
        if alone:
            await self.check_no_leftovers()
        return result

    async def check_no_leftovers(self) -> None:
        """No container but the warm pool's idle ones once the run's removal is done."""
        await self.runner.wait_removals()
        pool = self.runner.pool
        if pool is not None:
            await pool.wait_ready()  # a replacement being started is the pool's, not a leftover
            deadline = time.monotonic() + 60
            while pool.starting and time.monotonic() < deadline:  # it may grow past its size
                await asyncio.sleep(0.1)
        held = pool.idle_ids() if pool is not None else set()

        def leftovers() -> list[str]:
            owned = self.engine.list_containers(self.runner.policy.ownership_filter())
            return [c for c in owned if c not in held]

        # The engine may still be finishing a forced removal of a sandbox that crashed.
        deadline = time.monotonic() + 20
        while left := leftovers():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        states = {c[:12]: self.engine.state(c).get("Status") for c in left}
        assert left == [], f"containers left behind: {states}"

    def check_host(self, result: RunResult, request, timeout: float, wall: float) -> None:
        assert result.status is not RunStatus.SANDBOX_ERROR, result.message
        assert result.exec_seconds <= timeout + 1.5, f"exec took {result.exec_seconds:.1f} s"
        state = 2 * STATE_SECONDS if request.session_id else 0.0
        assert wall <= timeout + state + OVERHEAD_BUDGET, (
            f"the run took {wall:.1f} s (setup {result.setup_seconds:.1f}, "
            f"collect {result.collect_seconds:.1f}) for a {timeout:g} s limit"
        )
        assert peak_rss() < HOST_RSS_LIMIT, f"the host process grew to {peak_rss() >> 20} MiB"
        assert self.loop_stall < LOOP_STALL_LIMIT, (
            f"the event loop was held {self.loop_stall:.1f} s"
        )
        policy = self.runner.policy
        assert len(result.files) <= policy.max_output_files
        assert folder_bytes(Path(request.output_dir)) <= policy.output_size_bytes
        # one character per byte received at most (invalid bytes become U+FFFD)
        assert len(result.stdout) <= policy.max_stream_bytes
        assert len(result.stderr) <= policy.max_stream_bytes


@pytest.fixture
def attack(runner, engine, make_request, runtime, data_dir):  # noqa: F811
    return Attack(runner, engine, make_request, runtime, data_dir)
