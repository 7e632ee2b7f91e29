"""The code floor of `bench`: each snippet alone, in a process forked from one that ran it once
(the imports, lazy imports and caches a warm runner's preload makes), fork and wait included,
timed in a bare container of the image with the sandbox's policy, and on the host when its
Python has the libraries. What a warm run cannot beat."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

from app.ops.bench_figures import percentile

if TYPE_CHECKING:
    from app.ops.bench import Benchmark

FLOOR_TIMEOUT = 600.0
# argv: the snippets as JSON, the repetitions; prints {snippet: [ms, ...]}.
CODE_FLOOR_SCRIPT = """
import contextlib, io, json, os, sys, time
import numpy, pandas, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
snippets, repetitions = json.loads(sys.argv[1]), int(sys.argv[2])
for code in snippets.values():
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<code>", "exec"), {"__name__": "__main__"})
out = {}
for name, code in snippets.items():
    samples = []
    for _ in range(repetitions + 1):
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            try:
                exec(compile(code, "<code>", "exec"), {"__name__": "__main__"})
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        samples.append((time.perf_counter() - started) * 1000)
    out[name] = samples[1:]
print(json.dumps(out))
"""


async def host_floor(bench: Benchmark, snippets: dict[str, str]) -> list[dict]:
    out = bench.work / "host-out"
    out.mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-c",
        CODE_FLOOR_SCRIPT,
        json.dumps(snippets),
        str(bench.options.repetitions),
        env=bench.host_env(out),
        cwd=out,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stdout, _ = await proc.communicate()
    return floor_rows(stdout, "host")


async def image_floor(bench: Benchmark, snippets: dict[str, str], runtime: str) -> list[dict]:
    script = ["-c", CODE_FLOOR_SCRIPT, json.dumps(snippets), str(bench.options.repetitions)]
    args = bench.bare_args(bench.policy(runtime), "bench-floor", script)
    args.pop("log_config", None)  # its few lines of figures are read from the engine's log
    engine = bench.engine
    try:
        code, stdout, _ = await engine.call(engine.run_and_capture, args, FLOOR_TIMEOUT)
    except Exception:
        return []
    return floor_rows(stdout, f"image ({runtime})") if code == 0 else []


def floor_rows(stdout: bytes, where: str) -> list[dict]:
    """The floor's rows from its script's output (none when it failed)."""
    try:
        samples = json.loads(stdout)
    except ValueError:
        return []
    return [
        {
            "snippet": name,
            "where": where,
            "p50_ms": round(percentile(values, 50) or 0.0, 2),
            "p95_ms": round(percentile(values, 95) or 0.0, 2),
            "n": len(values),
        }
        for name, values in samples.items()
        if values
    ]
