"""The bench's load figures: throughput with concurrent users on a warm pool, and a soak that
counts leaked containers and staging folders and the growth of this process's memory."""

from __future__ import annotations

import asyncio
import gc
import shutil
import time
from typing import TYPE_CHECKING

from app.ops.bench_figures import percentile, rss_mb
from app.sandbox import RunStatus
from app.wiring import sandbox_policy

if TYPE_CHECKING:
    from app.ops.bench import Benchmark


async def throughput(bench: Benchmark, runtime: str) -> dict:
    opts = bench.options
    runner = bench.runner(runtime, pool_size=opts.users, concurrent=opts.users)
    await runner.start()
    latencies: list[float] = []
    errors = 0
    remaining = opts.throughput_runs
    pool = runner.pool
    assert pool is not None, "the throughput test always has a warm pool"
    try:
        await pool.wait_ready(timeout=300)

        async def user(n: int) -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                request = bench.request("pandas", user=f"user-{n}")
                started = time.perf_counter()
                result = await runner.run(request)
                latencies.append((time.perf_counter() - started) * 1000)
                shutil.rmtree(request.output_dir, ignore_errors=True)
                errors += result.status is not RunStatus.OK

        started = time.perf_counter()
        await asyncio.gather(*(user(n) for n in range(opts.users)))
        seconds = time.perf_counter() - started
        stats = pool.stats
    finally:
        await runner.close()
    return {
        "runtime": runtime,
        "snippet": "pandas",
        "users": opts.users,
        "runs": len(latencies),
        "seconds": round(seconds, 2),
        "runs_per_second": round(len(latencies) / seconds, 2) if seconds else None,
        "p50_ms": round(percentile(latencies, 50) or 0, 1),
        "p95_ms": round(percentile(latencies, 95) or 0, 1),
        "warm": stats.taken,
        "cold_fallbacks": stats.missed,
        "errors": errors,
    }


def remove_leaks(bench: Benchmark) -> tuple[int, int]:
    """The bench's containers still there (then removed) and staging folders left behind."""
    leaked = bench.engine.list_containers(sandbox_policy(bench.settings).ownership_filter())
    for container_id in leaked:
        bench.engine.remove(container_id)
    staging = bench.layout.pool
    return len(leaked), len(list(staging.iterdir())) if staging.is_dir() else 0


async def soak(bench: Benchmark, runtime: str) -> dict:
    opts = bench.options
    concurrent = max(1, min(opts.users, 2))
    runner = bench.runner(runtime, pool_size=opts.pool_size, concurrent=concurrent)
    await runner.start()
    errors = 0
    done = 0
    try:
        gc.collect()
        rss_start = rss_mb()
        started = time.perf_counter()

        async def user(n: int) -> None:
            nonlocal done, errors
            while done < opts.soak_runs:
                done += 1
                request = bench.request("print", user=f"soak-{n}")
                result = await runner.run(request)
                shutil.rmtree(request.output_dir, ignore_errors=True)
                errors += result.status is not RunStatus.OK or result.stdout != "1\n"

        await asyncio.gather(*(user(n) for n in range(concurrent)))
        seconds = time.perf_counter() - started
        stats = runner.pool.stats if runner.pool else None
    finally:
        await runner.close()
    gc.collect()
    rss_end = rss_mb()
    leaked, leaked_staging = remove_leaks(bench)
    return {
        "runtime": runtime,
        "runs": done,
        "concurrent": concurrent,
        "seconds": round(seconds, 1),
        "errors": errors,
        "warm": stats.taken if stats else 0,
        "cold_fallbacks": stats.missed if stats else 0,
        "leaked_containers": leaked,
        "leaked_staging_folders": leaked_staging,
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_mb": round(rss_end - rss_start, 1),
    }
