"""The bench's load scenario (`bench --load`): Discord-like users on the bot's own settings.

Each of `users` simulated users thinks for an exponentially distributed time (mean
`think_seconds`), sends the snippet, waits for the answer and thinks again, until `seconds` are
over; the think times come from a fixed seed, so two runs of the scenario send the same arrivals.
The runner is built from the bench's settings as the bot's is (pool size and its bounds, run
slots), so what is measured is what a deployment gets. Reported: latency percentiles of all runs
and of the ones served cold, the fraction served warm, the CPU one refill costs (the engine's
cgroup figure for each warm container as it waits in the pool: its start, runner and preloads,
nothing of a run), the pool's size over time, and leaked containers and staging folders. The
runs are also split by how they were served (`served`): from a ready container, by waiting for a
start under way, or cold; the p95 of a loaded pool is the waiting and cold ones.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import random
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.ops.bench_figures import local_engine, machine_busy_seconds, percentile
from app.ops.bench_load import remove_leaks
from app.sandbox import RunStatus

if TYPE_CHECKING:
    from app.ops.bench import Benchmark
    from app.sandbox import SandboxRunner

SAMPLE_SECONDS = 0.5
# How the current user's run was served: "ready", "waited" or "cold" (set by the wrapped
# _take_warm; nothing recorded means cold).
_served: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("served", default=None)
SERVED_PATHS = ("ready", "waited", "cold")


MAX_LOAD_USERS = 1000
"""Each user is a task sending one run at a time; beyond this many, setting them up takes a short
scenario's whole window and it measures nothing (100 000 users for 1 s: no run at all)."""


@dataclass(frozen=True)
class LoadOptions:
    users: int = 6
    think_seconds: float = 3.0
    seconds: float = 60.0
    snippet: str = "pandas"
    seed: int = 15


@dataclass
class _Run:
    started: float
    ms: float
    served: str
    """"ready", "waited" or "cold"."""
    ok: bool


async def load_scenario(bench: Benchmark, runtime: str, load: LoadOptions) -> dict:
    runner = bench.runner(runtime, pool_size=bench.options.pool_size)
    pool = runner.pool
    _record_warm_takes(runner)
    await runner.start()
    runs: list[_Run] = []
    timeline: list[list[float]] = []
    refill_cpu: dict[str, float | None] = {}
    try:
        if pool is not None:
            await pool.wait_ready(timeout=300)
        busy_before = machine_busy_seconds() if local_engine() else None
        own_before = sum(os.times()[:2])
        began = time.monotonic()
        end = began + load.seconds

        async def user(n: int) -> None:
            rng = random.Random(load.seed * 1000 + n)
            served: list[str] = []
            _served.set(served)
            while True:
                await asyncio.sleep(rng.expovariate(1 / load.think_seconds))
                if time.monotonic() >= end:
                    return
                served.clear()
                request = bench.request(load.snippet, user=f"load-{n}")
                started = time.monotonic()
                result = await runner.run(request)
                ms = (time.monotonic() - started) * 1000
                shutil.rmtree(request.output_dir, ignore_errors=True)
                how = next((path for path in served if path != "cold"), "cold")
                runs.append(_Run(started - began, ms, how, result.status is RunStatus.OK))

        async def sample() -> None:
            while True:
                if pool is not None:
                    at = round(time.monotonic() - began, 1)
                    timeline.append([at, pool.ready, pool.starting, pool.target])
                    for container_id in pool.idle_ids() - set(refill_cpu):
                        refill_cpu[container_id] = None  # read once, while it is idle
                        refill_cpu[container_id] = await bench.engine.call(
                            _cpu_ms, bench, container_id
                        )
                await asyncio.sleep(SAMPLE_SECONDS)

        sampler = asyncio.get_running_loop().create_task(sample())
        try:
            await asyncio.gather(*(user(n) for n in range(load.users)))
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        seconds = time.monotonic() - began
        busy_after = machine_busy_seconds() if busy_before is not None else None
        own = sum(os.times()[:2]) - own_before
        machine = machine_cpu(busy_before, busy_after, own, seconds, len(runs))
    finally:
        await runner.close()
    leaked, leaked_staging = remove_leaks(bench)
    return summarize(load, runtime, runs, seconds, refill_cpu, timeline) | {
        "pool_size": pool.size if pool is not None else 0,
        "pool_max": pool.max_size if pool is not None else 0,
        "starts_without_deferred": pool.stats.undeferred if pool is not None else 0,
        # Served warm after waiting for a start (in warm_runs too), and how long a start took.
        "waited_runs": pool.stats.waited if pool is not None else 0,
        "refill_ms_estimate": round(pool.sizer.refill_seconds * 1000) if pool is not None else None,
        "leaked_containers": leaked,
        "leaked_staging_folders": leaked_staging,
        "machine_cpu": machine,
    }


def machine_cpu(
    before: tuple[float, float] | None,
    after: tuple[float, float] | None,
    own: float,
    seconds: float,
    runs: int,
) -> dict | None:
    """Where the cores went during the scenario, with a local engine (`before` and `after` are
    machine_busy_seconds()): how busy they were with this machine's work, how much a hypervisor
    took for other guests, and CPU per run of the whole machine (containers, engine, kernel,
    this process; stolen time not counted) and of this process alone (the users, the runner,
    the pool). None when the engine's CPU is not in /proc/stat."""
    if before is None or after is None or seconds <= 0:
        return None
    work, stolen = after[0] - before[0], after[1] - before[1]
    cores = os.cpu_count() or 1
    return {
        # /proc/stat counts in clock ticks: a little past full on a saturated machine.
        "busy_fraction": round(min(1.0, work / (seconds * cores)), 3),
        "steal_fraction": round(min(1.0, stolen / (seconds * cores)), 3),
        "per_run_ms": round(work / runs * 1000, 1) if runs else None,
        "bench_per_run_ms": round(own / runs * 1000, 1) if runs else None,
    }


def summarize(
    load: LoadOptions,
    runtime: str,
    runs: list[_Run],
    seconds: float,
    refill_cpu: dict[str, float | None],
    timeline: list[list[float]],
) -> dict:
    """The load object of the report (a pure function of what was recorded)."""
    latencies = [r.ms for r in runs]
    by_path = {path: [r.ms for r in runs if r.served == path] for path in SERVED_PATHS}
    cold = by_path["cold"]
    cpu = [v for v in refill_cpu.values() if v is not None]

    def ms(values: list[float], pct: float) -> float | None:
        value = percentile(values, pct)
        return round(value, 1) if value is not None else None

    return {
        "runtime": runtime,
        "snippet": load.snippet,
        "users": load.users,
        "think_seconds": load.think_seconds,
        "seed": load.seed,
        "seconds": round(seconds, 1),
        "runs": len(runs),
        "errors": sum(not r.ok for r in runs),
        "warm_runs": len(runs) - len(cold),
        "warm_fraction": round((len(runs) - len(cold)) / len(runs), 3) if runs else None,
        "p50_ms": ms(latencies, 50),
        "p95_ms": ms(latencies, 95),
        "p99_ms": ms(latencies, 99),
        "cold_p50_ms": ms(cold, 50),
        "served": {
            path: {"runs": len(group), "p50_ms": ms(group, 50), "p95_ms": ms(group, 95)}
            for path, group in by_path.items()
        },
        "refill_cpu_ms_p50": ms(cpu, 50),
        "refills_measured": len(cpu),
        "pool_over_time": _thin(timeline),
    }


def _thin(timeline: list[list[float]], most: int = 120) -> list[dict]:
    """The pool's size over time, at most `most` points: [seconds, ready, starting, target]."""
    step = max(1, len(timeline) // most)
    return [
        {"t": t, "ready": ready, "starting": starting, "target": target}
        for t, ready, starting, target in timeline[::step]
    ]


def _cpu_ms(bench: Benchmark, container_id: str) -> float | None:
    try:
        seconds = bench.engine.cpu_seconds(container_id)
    except Exception:  # taken and removed meanwhile: no figure for it
        return None
    return seconds * 1000 if seconds is not None else None


def _record_warm_takes(runner: SandboxRunner) -> None:
    """Note, for the user whose run it is, how the runner served it: a ready container, one it
    waited for, or none (cold)."""
    take = runner._take_warm

    async def recorded(request, state=None):
        warm = await take(request, state)
        served = _served.get()
        if served is not None:
            served.append("cold" if warm is None else "waited" if warm.waited_for else "ready")
        return warm

    setattr(runner, "_take_warm", recorded)  # noqa: B010 - measured, not changed
