"""The bench's "warm via service" rows: what the sandbox service's API adds to a warm run.

A SandboxServer is started around the warm runner the bench already has, on a Unix socket in the
bench's work folder, and a SandboxClient talks to it as the bot does in compose: the CSV goes in
the request, the plot comes back streamed. Each repetition runs the snippet once directly and
once through the service on the same pool, so machine load hits both alike; the row's
`hop_p50_ms` is the median of the pairs' differences. Client and server share this process's event
loop here (in compose they are two processes), so the figure is an upper bound for one core.
"""

from __future__ import annotations

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
    figures = []
    await server.start()
    try:
        for snippet in SNIPPET_NAMES:
            bench.options.progress(f"{runtime} / warm via service / {snippet}")
            figure = Figure(runtime, PATH, snippet)
            for rep in range(bench.options.repetitions + 1):
                direct = await bench.timed_run(runner, snippet, figure)
                via = await bench.timed_run(runner, snippet, figure, via=client)
                if rep and direct is not None and via is not None:
                    figure.baseline.append(direct[0])
                    figure.samples.append(via[0])
            figures.append(figure)
    finally:
        await client.close()
        await server.close()  # stops listening; the bench closes the runner
    return figures
