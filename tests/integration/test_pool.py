"""The warm pool against the real engine: runs served by containers started ahead of time."""

import asyncio
import os
import time

import pytest

from app.sandbox import InputFile, RunStatus
from app.sandbox.policy import INSTANCE_LABEL
from app.sandbox.pool import POOL_LABEL
from app.wiring import build_runner


def make_runner(settings, engine, **changes):
    changes.setdefault("sandbox_warm_pool_size", 1)
    return build_runner(settings.model_copy(update=changes), engine)


@pytest.fixture
async def pool_runner(settings, engine):
    runner = make_runner(settings, engine)
    await runner.start()
    assert await runner.pool.wait_ready()
    yield runner
    await runner.close()


def pool_containers(engine, settings):
    """Warm containers of this test session only (a bench may be running beside it)."""
    return engine.list_containers(
        {"label": [POOL_LABEL, f"{INSTANCE_LABEL}={settings.sandbox_instance}"]}
    )


async def test_a_warm_run_reads_files_staged_after_the_container_started(
    pool_runner, make_request, input_dir
):
    (input_dir / "f1.csv").write_text("a,b\n1,10\n2,20\n")
    (input_dir / "other.txt").write_text("not part of this run")
    files = (InputFile(file_id="f1", name="sales.csv", filename="f1.csv", size=15, type="csv"),)
    code = (
        "import os\nprint(int(load_file('sales.csv')['b'].sum()), sorted(os.listdir('/mnt/data')))"
    )
    result = await pool_runner.run(make_request(code, input_dir=input_dir, files=files))
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout == "30 ['f1.csv']\n"  # only the request's files, by their filename
    assert pool_runner.pool.stats.taken == 1 and pool_runner.pool.stats.missed == 0
    assert result.setup_seconds < 0.5  # the container, runner and imports were ready
    assert sorted(p.name for p in input_dir.iterdir()) == ["f1.csv", "other.txt"]


async def test_each_warm_container_serves_exactly_one_run(pool_runner, make_request):
    code = "import os\nopen('/tmp/marker', 'x').write('x')\nprint(os.getpid() > 0)"
    first = await pool_runner.run(make_request(code))
    assert await pool_runner.pool.wait_ready()
    second = await pool_runner.run(make_request(code))
    # A reused container would still have /tmp/marker and the second open would fail.
    assert (first.status, second.status) == (RunStatus.OK, RunStatus.OK), second.stderr
    assert pool_runner.pool.stats.taken == 2


async def test_used_containers_and_staging_are_removed_after_the_reply(
    pool_runner, engine, make_request, input_dir, settings
):
    (input_dir / "f1.txt").write_text("x")
    files = (InputFile(file_id="f1", name="x.txt", filename="f1.txt", size=1),)
    result = await pool_runner.run(
        make_request("print(load_file('f1'))", input_dir=input_dir, files=files)
    )
    assert result.stdout == "x\n"
    await pool_runner.close()
    assert pool_containers(engine, settings) == []
    assert list((settings.data_dir / "pool").iterdir()) == []
    assert (input_dir / "f1.txt").read_text() == "x"  # the user's file itself is untouched


async def test_runs_beyond_the_pool_fall_back_to_cold_and_all_succeed(pool_runner, make_request):
    results = await asyncio.gather(
        *(pool_runner.run(make_request(f"print({n} * 2)")) for n in range(3))
    )
    assert [r.stdout for r in results] == ["0\n", "2\n", "4\n"]
    assert all(r.status is RunStatus.OK for r in results)
    stats = pool_runner.pool.stats
    assert stats.taken >= 1 and stats.missed >= 1


async def test_a_dead_warm_container_is_never_handed_out(
    pool_runner, engine, settings, make_request
):
    [idle] = pool_containers(engine, settings)
    engine.kill(idle)
    await asyncio.sleep(0.5)
    result = await pool_runner.run(make_request("print('fine')"))
    assert result.status is RunStatus.OK and result.stdout == "fine\n"
    assert pool_runner.pool.stats.taken == 0 and pool_runner.pool.stats.missed == 1


async def test_idle_containers_past_their_age_are_recycled(settings, engine, make_request):
    runner = make_runner(settings, engine, sandbox_warm_pool_max_age=1)
    await runner.start()
    try:
        assert await runner.pool.wait_ready()
        await asyncio.sleep(1.2)
        result = await runner.run(make_request("print('fresh')"))
        assert result.stdout == "fresh\n"
        assert runner.pool.stats.taken == 0 and runner.pool.stats.missed == 1
    finally:
        await runner.close()
    assert pool_containers(engine, settings) == []


async def test_orphaned_staging_folders_are_removed_at_start(settings, engine):
    orphan = settings.data_dir / "pool" / "deadbeef0000"
    orphan.mkdir(parents=True)
    (orphan / "leftover.csv").write_text("secret")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    runner = make_runner(settings, engine)
    await runner.start()
    await runner.close()
    assert not orphan.exists()


async def test_a_broken_image_still_gives_a_clear_result(settings, engine, make_request):
    runner = make_runner(settings, engine, sandbox_image="codeinterp-missing:nope")
    await runner.start()
    try:
        result = await runner.run(make_request("print(1)"))
    finally:
        await runner.close()
    assert result.status is RunStatus.SANDBOX_ERROR
    assert "python -m app image build" in result.message
    assert pool_containers(engine, settings) == []


async def test_files_staged_after_start_are_visible_under_gvisor(
    settings, engine, make_request, input_dir
):
    if "runsc" not in (engine.info().get("Runtimes") or {}):
        pytest.skip("gVisor (runsc) is not registered with this engine")
    runner = make_runner(settings, engine, sandbox_runtime="runsc")
    await runner.start()
    try:
        assert await runner.pool.wait_ready(timeout=180)
        (input_dir / "f1.csv").write_text("a,b\n5,1\n7,1\n")
        files = (InputFile(file_id="f1", name="n.csv", filename="f1.csv", size=12),)
        result = await runner.run(
            make_request("print(load_file('f1')['a'].sum())", input_dir=input_dir, files=files)
        )
    finally:
        await runner.close()
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout == "12\n" and runner.pool.stats.taken == 1


PROBE = (
    "import ctypes, os, sys\n"
    "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"  # PR_GET_DUMPABLE
    "fds = os.listdir('/proc/self/fd')\n"
    "print(sorted((fd, os.readlink(f'/proc/self/fd/{fd}')[:6]) for fd in fds if fd != '3'))\n"
    "print('wave' in sys.modules, 'colorsys' in sys.modules)\n"
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2]); plt.savefig('p.png'); print('plotted')\n"
    "import gc\n"
    "class Cycle: pass\n"
    "c = Cycle(); c.me = c; del c\n"
    "print(gc.isenabled(), gc.get_freeze_count() > 0, gc.collect() >= 1)\n"
)


async def probe(settings, engine, make_request, defer: str, idle: float):
    runner = make_runner(settings, engine, sandbox_warm_defer=defer)
    await runner.start()
    try:
        assert await runner.pool.wait_ready()
        await asyncio.sleep(idle)
        result = await runner.run(make_request(PROBE))
        assert runner.pool.stats.taken == 1
    finally:
        await runner.close()
    assert result.status is RunStatus.OK, result.stderr
    assert [f.name for f in result.files] == ["p.png"]
    return result.stdout.splitlines()


async def test_deferred_imports_never_hold_up_a_run_and_are_there_once_done(
    settings, engine, make_request
):
    # Taken the moment it is ready, its deferring child still importing matplotlib: the plain
    # child runs the code (dumpable like the other, holding no descriptor of the runner).
    early = await probe(settings, engine, make_request, "matplotlib,matplotlib.pyplot", 0)
    # Taken once the deferred imports (quick ones here) are done: they are there for the code.
    settled = await probe(settings, engine, make_request, "wave,colorsys", 8)
    assert early[0] == settled[0] == "1"
    assert early[1] == settled[1]  # the same descriptors
    assert settled[2] == "True True" and early[3] == settled[3] == "plotted"
    # The preload's objects are frozen (never traversed again); the code's own are collected.
    assert early[4] == settled[4] == "True True True"
