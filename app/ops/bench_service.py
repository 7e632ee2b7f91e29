"""The bench's "warm via service" rows: what the sandbox service's API adds to a warm run.

A SandboxServer is started around the warm runner the bench already has, on a Unix socket in the
bench's work folder, and a SandboxClient talks to it as the bot does in compose: the CSV goes in
the request, the plot comes back streamed. Each repetition runs the snippet once directly and
once through the service on the same pool (the row's p50 against `direct_p50_ms`). The hop is
measured per run, exactly: the run's time at the client minus the time the runner took for it
inside the service, so the container's own variance (large on a loaded machine) is not in it.
Client and server share this process's event loop here (in compose they are two processes on
two cores), so the hop is an upper bound.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from app.ops.bench_figures import SNIPPET_NAMES, Figure
from app.sandbox import SandboxRunner
from app.sandboxd import RunLimits, SandboxClient, SandboxServer, ServiceAddress

if TYPE_CHECKING:
    from app.ops.bench import Benchmark

PATH = "service"


async def measure_service(bench: Benchmark, runner: SandboxRunner, runtime: str) -> list[Figure]:
    settings = bench.settings
    address = ServiceAddress.parse(f"unix://{bench.work / 'sandboxd.sock'}")
    server = SandboxServer(
        runner,
        RunLimits(
            max_code_bytes=runner.policy.max_code_bytes,
            max_timeout=runner.max_timeout,
            max_files=settings.max_files_per_user,
            max_file_bytes=int(settings.max_file_size_mb * 1024**2),
        ),
        address=address,
        staging=bench.layout.staging,
    )
    client = SandboxClient(
        address,
        token=None,
        max_timeout=runner.max_timeout,
        run_deadline=600,
        max_output_files=settings.sandbox_max_output_files,
        max_output_bytes=settings.sandbox_output_size,
    )
    inner: list[float] = []
    direct_run = runner.run

    async def timed_run(request, on_queued=None):
        started = time.perf_counter()
        try:
            return await direct_run(request, on_queued)
        finally:
            inner.append((time.perf_counter() - started) * 1000)

    figures = []
    await server.start()
    setattr(runner, "run", timed_run)  # noqa: B010 - the service calls it; measured, not changed
    try:
        for snippet in SNIPPET_NAMES:
            bench.options.progress(f"{runtime} / warm via service / {snippet}")
            figure = Figure(runtime, PATH, snippet)
            for rep in range(bench.options.repetitions + 1):
                direct = await bench.timed_run(runner, snippet, figure)
                inner.clear()
                via = await bench.timed_run(runner, snippet, figure, via=client)
                if rep and direct is not None and via is not None and len(inner) == 1:
                    figure.baseline.append(direct[0])
                    figure.samples.append(via[0])
                    figure.hops.append(via[0] - inner[0])
            figures.append(figure)
    finally:
        delattr(runner, "run")  # the runner's own method again
        await client.close()
        await server.close()  # stops listening and closes the runner: the warm path's last row
    return figures
