"""The warm pool under arrivals, on the fake engine: a run waits for an almost ready container,
the pool grows and shrinks within its bounds, and refills yield to runs without taking a slot."""

import asyncio
import time

import pytest

from app.sandbox import RunRequest, RunStatus, SandboxRunner, WarmPool
from app.sandbox import pool as pool_module
from app.sandbox.policy import SandboxPolicy
from app.sandbox.pool_sizing import PoolBounds, PoolSizer
from app.sandbox.slots import RunSlots
from tests.fakes.engine import FakeEngine, Script


def slow_starts(engine: FakeEngine, seconds: float) -> None:
    create = engine.create_attach_start

    def slowly(args):
        time.sleep(seconds)
        return create(args)

    engine.create_attach_start = slowly  # type: ignore[method-assign]


def make_pool(tmp_path, engine, *, size=1, max_size=None, cores=2, clock=time.monotonic):
    policy = SandboxPolicy(image="img:test", data_dir=tmp_path)
    bounds = PoolBounds(size=size, max_size=max_size or size, container_memory=policy.memory_bytes)
    # An idle machine: whether imports are deferred follows the arrivals alone.
    idle = {"memory": lambda: 64 * 1024**3, "cpu_busy": lambda: 0.0}
    sizer = PoolSizer(bounds, cores=cores, clock=clock, **idle)
    return WarmPool(
        policy,
        engine,
        size=size,
        max_age=60,
        staging_root=tmp_path / "pool",
        max_size=max_size,
        sizer=sizer,
    )


async def until(condition, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_run_arriving_while_a_container_is_almost_ready_takes_it(tmp_path):
    engine = FakeEngine()
    pool = make_pool(tmp_path, engine)
    pool.sizer.refill_seconds, pool.sizer.cold_seconds = 0.3, 5.0  # a cold start is slower
    await pool.start()
    try:
        assert await pool.wait_ready(timeout=10)
        slow_starts(engine, 0.3)
        first = pool.take()
        assert first is not None
        await until(lambda: pool.starting == 1)  # its replacement is under way
        second = await pool.acquire()
        assert second is not None and second.container_id != first.container_id
        assert pool.stats.waited == 1 and pool.stats.missed == 0
        # The bench tells these runs from the ones a ready container served.
        assert second.waited_for and not first.waited_for
        pool.dispose(first)
        pool.dispose(second)
    finally:
        await pool.close()
    assert engine.live() == []


async def test_a_run_does_not_wait_when_a_cold_start_is_sooner(tmp_path):
    engine = FakeEngine()
    pool = make_pool(tmp_path, engine)
    await pool.start()
    try:
        assert await pool.wait_ready(timeout=10)
        slow_starts(engine, 0.5)
        pool.sizer.refill_seconds, pool.sizer.cold_seconds = 30.0, 0.1
        first = pool.take()
        await until(lambda: pool.starting == 1)
        began = time.monotonic()
        assert await pool.acquire() is None
        assert time.monotonic() - began < 0.3 and pool.stats.missed == 1
        pool.dispose(first)
    finally:
        await pool.close()
    assert engine.live() == []


async def test_a_pandas_run_waits_for_a_start_where_a_print_run_goes_cold(tmp_path):
    engine = FakeEngine(Script(stdout=b"ok\n"))
    policy = SandboxPolicy(image="img:test", data_dir=tmp_path)
    pool = make_pool(tmp_path, engine)
    runner = SandboxRunner(policy, engine, max_timeout=5, pool=pool)
    await runner.start()
    try:
        assert await pool.wait_ready(timeout=10)
        slow_starts(engine, 0.4)
        # A cold container is ready sooner than this start, but pandas would then be imported
        # in it too: about a refill's work.
        pool.sizer.refill_seconds, pool.sizer.cold_seconds = 1.0, 0.2
        first = pool.take()
        await until(lambda: pool.starting == 1)
        await asyncio.sleep(0.1)
        out = tmp_path / "out"
        plain = await runner.run(RunRequest(code="print('ok')", user_id="u1", output_dir=out))
        assert plain.status is RunStatus.OK and pool.stats.missed == 1 and pool.stats.waited == 0
        assert await pool.wait_ready(timeout=10)
        second = pool.take()  # the replacement is ready: take it, so the next one is starting
        await until(lambda: pool.starting == 1)
        await asyncio.sleep(0.1)
        pool.sizer.refill_seconds, pool.sizer.cold_seconds = 1.0, 0.2
        code = "import pandas as pd\nprint('ok')"
        data = await runner.run(RunRequest(code=code, user_id="u1", output_dir=out))
        assert data.status is RunStatus.OK and pool.stats.waited == 1 and pool.stats.missed == 1
        pool.dispose(first)
        pool.dispose(second)
    finally:
        await runner.close()
    assert engine.live() == []


async def test_a_wait_that_runs_out_goes_cold_and_the_container_stays_in_the_pool(tmp_path):
    engine = FakeEngine()
    pool = make_pool(tmp_path, engine)
    await pool.start()
    try:
        assert await pool.wait_ready(timeout=10)
        slow_starts(engine, 0.6)
        pool.sizer.refill_seconds, pool.sizer.cold_seconds = 0.2, 0.15
        first = pool.take()
        await until(lambda: pool.starting == 1)
        assert await pool.acquire() is None  # waited 0.15 s, the start took longer
        assert await pool.wait_ready(timeout=10)  # the late container is not lost
        assert pool.stats.waited == 0 and pool.ready == 1
        late = pool.take()  # the next run is served from the pool: it did not wait
        assert late is not None and not late.waited_for
        pool.dispose(late)
        pool.dispose(first)
    finally:
        await pool.close()
    assert engine.live() == []


async def test_the_pool_grows_under_arrivals_and_shrinks_when_idle_within_its_max(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(pool_module, "SHRINK_AFTER", 0.2)
    offset = [0.0]
    engine = FakeEngine()
    pool = make_pool(
        tmp_path, engine, size=1, max_size=3, clock=lambda: time.monotonic() + offset[0]
    )
    await pool.start()
    seen = []
    try:
        assert await pool.wait_ready(timeout=10)
        for _ in range(200):  # a burst of arrivals the pool could not serve
            pool.sizer.arrival()
        pool.replenish()

        async def watch():
            while True:
                seen.append(pool.ready + pool.starting)
                await asyncio.sleep(0.005)

        watcher = asyncio.get_running_loop().create_task(watch())
        await until(lambda: pool.ready == 3)
        offset[0] += 120  # the arrivals are long past: the target falls back to the size
        pool.replenish()
        await until(lambda: pool.ready == 1)
        watcher.cancel()
        assert pool.stats.shrunk == 2
        assert max(seen) <= 3  # never above the maximum
    finally:
        await pool.close()
    assert engine.live() == []


async def test_under_arrivals_new_containers_skip_the_imports_they_would_not_finish(tmp_path):
    engine = FakeEngine()
    pool = make_pool(tmp_path, engine, size=1, max_size=1)
    await pool.start()
    try:
        assert await pool.wait_ready(timeout=10)
        idle_start = engine.exec_commands[-1]
        assert "--defer" in idle_start  # no arrivals: it has the time to import matplotlib
        for _ in range(100):  # 5 runs a second: a new container is taken as soon as it is ready
            pool.sizer.arrival()
        pool.dispose(pool.take())
        await until(lambda: pool.ready == 1)
        assert "--defer" not in engine.exec_commands[-1]
        assert "--preload" in engine.exec_commands[-1]  # numpy and pandas, as always
        assert pool.stats.undeferred == 1
    finally:
        await pool.close()
    assert engine.live() == []


async def test_refills_wait_while_runs_hold_every_core(tmp_path):
    engine = FakeEngine()
    pool = make_pool(tmp_path, engine, size=2, cores=2)
    runs = [2]
    pool.runs_active = lambda: runs[0]
    await pool.start()
    try:
        await until(lambda: pool.ready == 1)  # an empty pool refills even so, one at a time
        await asyncio.sleep(0.3)
        assert pool.ready == 1 and pool.starting == 0
        runs[0] = 0
        pool.replenish()
        await until(lambda: pool.ready == 2)
        runs[0] = 2
        taken = pool.take()
        await asyncio.sleep(0.3)
        assert pool.starting == 0 and pool.ready == 1  # two runs, two cores, one ready: wait
        runs[0] = 0
        pool.replenish()  # a run is over
        await until(lambda: pool.ready == 2)
        pool.dispose(taken)
    finally:
        await pool.close()
    assert engine.live() == []


async def test_runs_waiting_for_a_start_do_not_hold_back_the_refills(tmp_path):
    engine = FakeEngine()
    pool = make_pool(tmp_path, engine, size=2, cores=2)
    await pool.start()
    try:
        assert await pool.wait_ready(timeout=10)
        slow_starts(engine, 0.5)
        pool.sizer.refill_seconds, pool.sizer.cold_seconds = 0.5, 5.0
        runs = [0]
        pool.runs_active = lambda: runs[0]
        taken = [pool.take(), pool.take()]
        await until(lambda: pool.starting == 2)
        # Two more runs hold both cores' slots, but only to wait for those two starts: the
        # pool starts its next container for the runs after them at once.
        runs[0] = 2
        waiting = [asyncio.ensure_future(pool.acquire()) for _ in range(2)]
        await until(lambda: pool.starting == 3)
        got = await asyncio.gather(*waiting)
        assert all(warm is not None for warm in got) and pool.stats.waited == 2
        for warm in [*taken, *got]:
            pool.dispose(warm)
    finally:
        await pool.close()
    assert engine.live() == []


@pytest.mark.parametrize("capacity", [1, 2])
async def test_refills_never_take_a_runs_slot(tmp_path, capacity):
    engine = FakeEngine(Script(stdout=b"ok\n"))
    slow_starts(engine, 0.2)
    policy = SandboxPolicy(image="img:test", data_dir=tmp_path)
    pool = WarmPool(policy, engine, size=2, max_age=60, staging_root=tmp_path / "pool")
    runner = SandboxRunner(policy, engine, max_timeout=5, slots=RunSlots(capacity), pool=pool)
    await runner.start()
    try:
        await until(lambda: pool.starting > 0)  # refills under way, no run yet
        assert runner.slots.running == 0
        queued = []
        request = RunRequest(code="print('ok')", user_id="u1", output_dir=tmp_path / "out")
        result = await runner.run(request, on_queued=queued.append)
        assert result.status is RunStatus.OK and queued == []  # never queued behind refills
    finally:
        await runner.close()
    assert engine.live() == []
