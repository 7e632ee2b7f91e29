"""The sandbox benchmark behind `python -m app bench`: how far each run path is from the floor.

Paths, for each snippet and runtime, on the same image and policy:
- host:   the snippet in a fresh host Python process (floor for the code, imports included);
- docker: a bare docker SDK create/start/wait/remove of the snippet (floor for a container);
- cold:   our runner without a warm pool (create, start, runner, collect; removal after reply);
- warm:   our runner taking a ready container from the pool.
Also a `code_floor` (the snippet alone in a forked host process with the imports done: what a
warm run cannot beat), throughput with N concurrent users, and a soak that counts leaked
containers and the growth of this process's memory. Figures are measured, never asserted.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.sandbox import create_runner
from app.sandbox.engine import DockerEngine
from app.sandbox.policy import PYTHON, SandboxPolicy
from app.sandbox.result import InputFile, RunRequest, RunStatus
from app.sandbox.runner import OWNER_LABEL, SandboxRunner, owner_token

CSV_NAME = "bench.csv"
CSV_ROWS = 10_000
SNIPPETS = {
    "print": "print(1)\n",
    "pandas": (
        "import os\n"
        "import pandas as pd\n"
        f"df = pd.read_csv(os.path.join(os.environ['INPUT_DIR'], '{CSV_NAME}'))\n"
        "print(df.describe())\n"
    ),
    "plot": (
        "import os\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot(range(100), [i * i for i in range(100)])\n"
        "plt.savefig(os.path.join(os.environ['OUTPUT_DIR'], 'plot.png'))\n"
    ),
}
PATHS = ("host", "docker", "cold", "warm")
HOST_RUNTIME = "host"
# Preloads the snippets' imports once, then times each snippet in a forked child: a warm run's floor.
CODE_FLOOR_SCRIPT = """
import json, os, sys, time
import numpy, pandas, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
snippets, repetitions = json.loads(sys.argv[1]), int(sys.argv[2])
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


@dataclass
class BenchOptions:
    repetitions: int = 20
    users: int = 4
    throughput_runs: int = 40
    soak_runs: int = 500
    runtimes: tuple[str, ...] = ()
    """Runtimes to measure; empty = runc, and runsc when the engine has it."""
    pool_size: int = 1
    progress: Callable[[str], None] = lambda _line: None


@dataclass
class Figure:
    runtime: str
    path: str
    snippet: str
    samples: list[float] = field(default_factory=list)
    errors: int = 0
    cold_fallbacks: int = 0
    phases: dict[str, list[float]] = field(default_factory=dict)
    """Our paths: ms per phase of RunResult (setup, exec, collect), to show where time goes."""

    def to_dict(self) -> dict:
        p50, p95 = percentile(self.samples, 50), percentile(self.samples, 95)
        data = {
            "runtime": self.runtime,
            "path": self.path,
            "snippet": self.snippet,
            "p50_ms": round(p50, 1) if p50 is not None else None,
            "p95_ms": round(p95, 1) if p95 is not None else None,
            "n": len(self.samples),
            "errors": self.errors,
        }
        if self.path == "warm":
            data["cold_fallbacks"] = self.cold_fallbacks
        if self.phases:
            data["phases_p50_ms"] = {
                name: round(percentile(values, 50), 1) for name, values in self.phases.items()
            }
        return data


def percentile(samples: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_description(engine: DockerEngine) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = engine.info()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(info.get("MemTotal", 0) / 1024**3, 1),
        "kernel": platform.release(),
        "docker": info.get("ServerVersion"),
        "runtimes": sorted((info.get("Runtimes") or {}).keys()),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


class Benchmark:
    def __init__(self, settings: Settings, engine: DockerEngine, options: BenchOptions) -> None:
        # A private instance label scopes the leak count to the benchmark's own containers.
        self.settings = settings.model_copy(
            update={"sandbox_instance": f"bench-{uuid.uuid4().hex[:8]}"}
        )
        self.engine = engine
        self.options = options
        self.work = Path(tempfile.mkdtemp(prefix="bench-", dir=self._data_dir())).resolve()
        self.input_dir = self.work / "input"
        self.input_dir.mkdir()
        self.input_dir.chmod(0o755)
        self.csv_size = self._write_csv()
        self.input_files = (
            InputFile(file_id="bench", name=CSV_NAME, filename=CSV_NAME, size=self.csv_size, type="csv"),
        )

    def _data_dir(self) -> Path:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.data_dir

    def _write_csv(self) -> int:
        lines = ["id,price,quantity,category"]
        lines += [f"{i},{(i * 37) % 1000 / 10:.1f},{i % 17},{'abcde'[i % 5]}" for i in range(CSV_ROWS)]
        path = self.input_dir / CSV_NAME
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)
        return path.stat().st_size

    async def run(self) -> dict:
        try:
            return await self._run()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    async def _run(self) -> dict:
        opts = self.options
        available = set(self.engine.info().get("Runtimes") or {})
        runtimes = [r for r in (opts.runtimes or ("runc", "runsc")) if r in available]
        report: dict = {
            "machine": machine_description(self.engine),
            "image": self.settings.sandbox_image,
            "repetitions": opts.repetitions,
            "results": [],
            "code_floor": [],
            "notes": [],
        }
        missing = [r for r in (opts.runtimes or ("runc", "runsc")) if r not in available]
        for name in missing:
            report["notes"].append(f"runtime {name} is not registered with the engine: not measured")
        figures: list[Figure] = []
        host_ok = await self._host_has_libraries()
        if not host_ok:
            report["notes"].append(
                "host Python lacks pandas/matplotlib: host figures only for print "
                "(pip install pandas matplotlib to measure them)"
            )
        for snippet in SNIPPETS:
            if snippet == "print" or host_ok:
                opts.progress(f"host / {snippet}")
                figures.append(await self._measure_host(snippet))
        if host_ok:
            report["code_floor"] = await self._code_floor()
        for runtime in runtimes:
            for snippet in SNIPPETS:
                opts.progress(f"{runtime} / docker / {snippet}")
                figures.append(await self._measure_docker(runtime, snippet))
            for path in ("cold", "warm"):
                runner = self._runner(runtime, pool_size=opts.pool_size if path == "warm" else 0)
                await runner.start()
                try:
                    for snippet in SNIPPETS:
                        opts.progress(f"{runtime} / {path} / {snippet}")
                        figures.append(await self._measure_runner(runner, runtime, path, snippet))
                finally:
                    await runner.close()
        report["results"] = [f.to_dict() for f in figures]
        report["ratios"] = ratios(report["results"])
        if runtimes:
            opts.progress(f"throughput ({runtimes[0]}, {opts.users} users)")
            report["throughput"] = await self._throughput(runtimes[0])
            opts.progress(f"soak ({runtimes[0]}, {opts.soak_runs} runs)")
            report["soak"] = await self._soak(runtimes[0])
        report["targets"] = targets(report)
        return report

    def _runner(self, runtime: str, *, pool_size: int, concurrent: int | None = None) -> SandboxRunner:
        update = {"sandbox_runtime": runtime, "sandbox_warm_pool_size": pool_size}
        if concurrent is not None:
            update["sandbox_max_concurrent_runs"] = concurrent
        return create_runner(self.settings.model_copy(update=update), self.engine)

    def _request(self, snippet: str, user: str = "bench") -> RunRequest:
        return RunRequest(
            code=SNIPPETS[snippet],
            user_id=user,
            output_dir=self.work / "out" / uuid.uuid4().hex,
            input_dir=self.input_dir,
            files=self.input_files,
        )

    # host

    async def _host_has_libraries(self) -> bool:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import pandas, matplotlib",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait() == 0

    def _host_env(self, out: Path) -> dict:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "INPUT_DIR": str(self.input_dir),
            "OUTPUT_DIR": str(out),
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(self.work / "mplconfig"),
            "HOME": str(self.work),
        }

    async def _measure_host(self, snippet: str) -> Figure:
        figure = Figure(HOST_RUNTIME, "host", snippet)
        out = self.work / "host-out"
        out.mkdir(exist_ok=True)
        for rep in range(self.options.repetitions + 1):  # the first one warms caches
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-c", SNIPPETS[snippet], env=self._host_env(out), cwd=out,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            code = await proc.wait()
            elapsed = (time.perf_counter() - started) * 1000
            if code != 0:
                figure.errors += 1
            elif rep:
                figure.samples.append(elapsed)
        return figure

    async def _code_floor(self) -> list[dict]:
        out = self.work / "host-out"
        out.mkdir(exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", CODE_FLOOR_SCRIPT, json.dumps(SNIPPETS),
            str(self.options.repetitions), env=self._host_env(out), cwd=out,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        stdout, _ = await proc.communicate()
        try:
            samples = json.loads(stdout)
        except ValueError:
            return []
        return [
            {
                "snippet": name,
                "p50_ms": round(percentile(values, 50), 2),
                "p95_ms": round(percentile(values, 95), 2),
                "n": len(values),
            }
            for name, values in samples.items()
            if values
        ]

    # bare docker

    async def _measure_docker(self, runtime: str, snippet: str) -> Figure:
        figure = Figure(runtime, "docker", snippet)
        policy = SandboxPolicy.from_settings(self.settings.model_copy(update={"sandbox_runtime": runtime}))
        for rep in range(self.options.repetitions + 1):
            args = policy.container_args(run_id=f"bench-{rep}", user_id="bench", input_dir=self.input_dir)
            args["labels"][OWNER_LABEL] = owner_token()
            args.pop("stdin_open", None)  # the bare container runs the snippet, not our warden
            args.update(
                command=[PYTHON, "-I", "-c", SNIPPETS[snippet]],
                user=f"{policy.code_uid}:{policy.code_uid}",
                environment=policy.code_environment(),
            )
            try:
                elapsed, code = await self.engine.call(self._docker_once, args)
            except Exception:  # noqa: BLE001 - a failed repetition is counted, not fatal
                figure.errors += 1
                continue
            if code != 0:
                figure.errors += 1
            elif rep:
                figure.samples.append(elapsed)
        return figure

    def _docker_once(self, args: dict) -> tuple[float, int]:
        client = self.engine.client
        started = time.perf_counter()
        container = client.containers.create(**args)
        try:
            container.start()
            code = container.wait(timeout=120).get("StatusCode", -1)
        finally:
            container.remove(force=True, v=True)
        return (time.perf_counter() - started) * 1000, code

    # our runner

    async def _measure_runner(
        self, runner: SandboxRunner, runtime: str, path: str, snippet: str
    ) -> Figure:
        figure = Figure(runtime, path, snippet)
        for rep in range(self.options.repetitions + 1):
            if runner.pool is not None:
                await runner.pool.wait_ready(1, timeout=300)
            await runner.wait_removals()  # the previous run's removal must not overlap this one
            taken_before = runner.pool.stats.taken if runner.pool else 0
            request = self._request(snippet)
            started = time.perf_counter()
            result = await runner.run(request)
            elapsed = (time.perf_counter() - started) * 1000
            shutil.rmtree(request.output_dir, ignore_errors=True)
            collected = snippet != "plot" or any(f.name == "plot.png" for f in result.files)
            if result.status is not RunStatus.OK or not collected:
                figure.errors += 1
                continue
            if runner.pool is not None and runner.pool.stats.taken == taken_before:
                figure.cold_fallbacks += 1
                continue  # served cold: not a warm figure
            if rep:
                figure.samples.append(elapsed)
                for phase in ("setup", "exec", "collect"):
                    seconds = getattr(result, f"{phase}_seconds")
                    figure.phases.setdefault(phase, []).append(seconds * 1000)
        return figure

    # load

    async def _throughput(self, runtime: str) -> dict:
        opts = self.options
        runner = self._runner(runtime, pool_size=opts.users, concurrent=opts.users)
        await runner.start()
        latencies: list[float] = []
        errors = 0
        remaining = opts.throughput_runs
        try:
            await runner.pool.wait_ready(timeout=300)

            async def user(n: int) -> None:
                nonlocal remaining, errors
                while remaining > 0:
                    remaining -= 1
                    request = self._request("pandas", user=f"user-{n}")
                    started = time.perf_counter()
                    result = await runner.run(request)
                    latencies.append((time.perf_counter() - started) * 1000)
                    shutil.rmtree(request.output_dir, ignore_errors=True)
                    errors += result.status is not RunStatus.OK

            started = time.perf_counter()
            await asyncio.gather(*(user(n) for n in range(opts.users)))
            seconds = time.perf_counter() - started
            stats = runner.pool.stats
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

    async def _soak(self, runtime: str) -> dict:
        opts = self.options
        concurrent = max(1, min(opts.users, 2))
        runner = self._runner(runtime, pool_size=opts.pool_size, concurrent=concurrent)
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
                    request = self._request("print", user=f"soak-{n}")
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
        policy = SandboxPolicy.from_settings(self.settings)
        leaked = self.engine.list_containers(policy.ownership_filter())
        for container_id in leaked:
            self.engine.remove(container_id)
        staging = policy.warm_staging_root()
        leaked_staging = list(staging.iterdir()) if staging.is_dir() else []
        return {
            "runtime": runtime,
            "runs": done,
            "concurrent": concurrent,
            "seconds": round(seconds, 1),
            "errors": errors,
            "warm": stats.taken if stats else 0,
            "cold_fallbacks": stats.missed if stats else 0,
            "leaked_containers": len(leaked),
            "leaked_staging_folders": len(leaked_staging),
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_end, 1),
            "rss_growth_mb": round(rss_end - rss_start, 1),
        }


def ratios(results: list[dict]) -> list[dict]:
    """cold and warm p50 against host (a) and bare docker (b), and warm's speed-up over cold."""
    p50 = {(r["runtime"], r["path"], r["snippet"]): r["p50_ms"] for r in results}
    rows = []
    for (runtime, path, snippet), value in p50.items():
        if path not in ("cold", "warm") or not value:
            continue
        host = p50.get((HOST_RUNTIME, "host", snippet))
        docker = p50.get((runtime, "docker", snippet))
        cold = p50.get((runtime, "cold", snippet))
        row = {"runtime": runtime, "path": path, "snippet": snippet}
        row["vs_host"] = round(value / host, 2) if host else None
        row["vs_docker"] = round(value / docker, 2) if docker else None
        if path == "warm":
            row["speedup_vs_cold"] = round(cold / value, 1) if cold else None
        rows.append(row)
    return rows


def targets(report: dict) -> list[dict]:
    """The issue's targets, with the measured figure and whether it was met (never asserted)."""
    p50 = {(r["runtime"], r["path"], r["snippet"]): r["p50_ms"] for r in report["results"]}
    checks = []

    def check(name: str, value: float | None, limit: float, unit: str, lower_is_better=True):
        if value is None:
            return
        met = value <= limit if lower_is_better else value >= limit
        checks.append({"target": name, "measured": round(value, 2), "limit": limit,
                       "unit": unit, "met": met})

    warm = p50.get(("runc", "warm", "pandas"))
    cold = p50.get(("runc", "cold", "pandas"))
    check("runc warm pandas p50", warm, 40, "ms")
    if warm and cold:
        check("runc warm pandas speed-up over cold", cold / warm, 15, "x", lower_is_better=False)
    for snippet in SNIPPETS:
        cold_s, docker_s = p50.get(("runc", "cold", snippet)), p50.get(("runc", "docker", snippet))
        if cold_s and docker_s:
            check(f"runc cold {snippet} vs bare docker", cold_s / docker_s, 1.10, "x")
    check("runsc warm pandas p50", p50.get(("runsc", "warm", "pandas")), 80, "ms")
    soak = report.get("soak")
    if soak:
        check("soak leaked containers", soak["leaked_containers"], 0, "containers")
    return checks
