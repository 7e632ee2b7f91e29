"""The bench's "warm with state" rows: what a session's state adds to a warm run.

A session is filled once with DataFrames of the row's size (none, 1 MB, 100 MB of float64);
then each repetition runs a plain warm `print` (no session: the row's `direct_p50_ms`) and the
same code in the session, which restores the whole state before the code and saves it after.
`added_p50_ms` is the median of the per-pair differences; `state_p50_ms` is the time the run
itself reports for restoring and saving. Figures, never assertions.
"""

from __future__ import annotations

import shutil
import time
import uuid
from typing import TYPE_CHECKING

from app.ops.bench_figures import Figure
from app.sandbox import RunRequest, RunStatus, SandboxRunner

if TYPE_CHECKING:
    from app.ops.bench import Benchmark

PATH = "state"
SIZES = {"empty": 0, "1mb": 1024**2, "100mb": 100 * 1024**2}
COLUMNS = 8


def fill_code(size: int) -> str:
    if not size:
        return "pass"
    rows = max(1, size // (8 * COLUMNS))
    return (
        "import numpy as np, pandas as pd\n"
        f"frame = pd.DataFrame(np.random.default_rng(1).random(({rows}, {COLUMNS})))\n"
    )


async def measure_state(bench: Benchmark, runner: SandboxRunner, runtime: str) -> list[Figure]:
    figures: list[Figure] = []
    if not runner.policy.keeps_state:
        return figures
    for name, size in SIZES.items():
        bench.options.progress(f"{runtime} / warm with state / {name}")
        figure = Figure(runtime, PATH, name)
        session = f"bench-{uuid.uuid4().hex[:8]}"
        filled = await _run(bench, runner, fill_code(size), session, warm_only=False)
        if filled is None or filled[1].status is not RunStatus.OK:
            figure.errors += 1
            figures.append(figure)
            continue
        for rep in range(bench.options.repetitions + 1):
            direct = await bench.timed_run(runner, "print", figure)
            stateful = await _run(bench, runner, "print(1)", session)
            if stateful is None:
                figure.cold_fallbacks += 1  # served cold: not a warm figure
            elif stateful[1].status is not RunStatus.OK:
                figure.errors += 1
            elif rep and direct is not None:
                figure.baseline.append(direct[0])
                figure.samples.append(stateful[0])
                figure.added.append(stateful[0] - direct[0])
                figure.phases.setdefault("state", []).append(stateful[1].state_seconds * 1000)
        await runner.reset_session("bench", session)
        figures.append(figure)
    return figures


async def _run(
    bench: Benchmark, runner: SandboxRunner, code: str, session: str, *, warm_only: bool = True
):
    """(ms, result) of one warm run in `session`; None when it was served cold (`warm_only`)."""
    await bench.settle(runner)
    taken = runner.pool.stats.taken if runner.pool else 0
    out = bench.work / "out" / uuid.uuid4().hex
    request = RunRequest(code=code, user_id="bench", output_dir=out, session_id=session)
    started = time.perf_counter()
    result = await runner.run(request)
    elapsed = (time.perf_counter() - started) * 1000
    shutil.rmtree(out, ignore_errors=True)
    if warm_only and runner.pool is not None and runner.pool.stats.taken == taken:
        return None
    return elapsed, result
