"""The sandbox benchmark behind `python -m app bench`: how far each run path is from the floor.

Paths, for each snippet and runtime, on the same image and policy:
- host:   the snippet in a fresh host Python process (floor for the code, imports included);
- docker: a bare docker SDK create/start/wait/remove of the snippet (floor for a container);
- docker-run: docker-py's one call, `containers.run(..., remove=True)`, the peers' cold path and
          the cold baseline;
- cold:   our runner without a warm pool (create, start, runner, collect; removal after reply);
- warm:   our runner taking a ready container from the pool;
- service: the warm path through the sandbox service's API on a Unix socket, interleaved with
          direct warm runs on the same pool, so the difference is the socket hop
          (app/ops/bench_service.py).
Also a `code_floor` (the snippet alone in a process forked from one that ran it once, as the warm
runner's preload does, in a bare container of the image, and on the host when its Python has the
libraries: what a warm run cannot beat), throughput with N concurrent users, and a soak that
counts leaked containers and the growth of this process's memory. Figures are measured, never
asserted; the project's targets live outside the product (`--targets FILE`,
docs/performance-targets.json).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.layout import DataLayout
from app.ops.bench_figures import (
    HOST_RUNTIME,
    SNIPPET_NAMES,
    Figure,
    figures,
    judge,
    machine_description,
    ratios,
)
from app.ops.bench_floor import host_floor, image_floor
from app.ops.bench_load import soak, throughput
from app.ops.bench_refill import refill_breakdown
from app.ops.bench_scenario import LoadOptions, load_scenario
from app.ops.bench_service import measure_service
from app.ops.bench_state import measure_state
from app.sandbox import (
    InputFile,
    RunRequest,
    RunResult,
    RunStatus,
    SandboxRunner,
    SandboxService,
)
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.leftovers import owner_token
from app.sandbox.names import PYTHON
from app.sandbox.policy import SandboxPolicy
from app.wiring import Components, sandbox_policy

# What the deferred imports of a container that has just become ready take, with room to spare.
SETTLE_SECONDS = 1.0


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
PATHS = ("host", "docker", "docker-run", "cold", "warm")
assert tuple(SNIPPETS) == SNIPPET_NAMES


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
    targets: dict[str, dict[str, float]] = field(default_factory=dict)
    """figure name -> {"max": limit} or {"min": limit}: judged and printed, never enforced."""
    only: str = ""
    """"load" or "refill": that part alone (with the machine), else everything."""
    load: LoadOptions = field(default_factory=LoadOptions)


class Benchmark:
    def __init__(self, settings: Settings, engine: DockerEngine, options: BenchOptions) -> None:
        # A private instance label scopes the leak count to the benchmark's own containers.
        self.settings = settings.model_copy(
            update={"sandbox_instance": f"bench-{uuid.uuid4().hex[:8]}"}
        )
        self.engine = engine
        self.options = options
        self.layout = DataLayout(self.settings.data_dir)
        self.work = self.layout.new_tmp_dir("bench-")
        self.input_dir = self.work / "input"
        self.input_dir.mkdir()
        self.input_dir.chmod(0o755)
        self.csv_size = self._write_csv()
        self.input_files = (
            InputFile(
                file_id="bench", name=CSV_NAME, filename=CSV_NAME, size=self.csv_size, type="csv"
            ),
        )

    def _write_csv(self) -> int:
        lines = ["id,price,quantity,category"]
        lines += [
            f"{i},{(i * 37) % 1000 / 10:.1f},{i % 17},{'abcde'[i % 5]}" for i in range(CSV_ROWS)
        ]
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
            report["notes"].append(
                f"runtime {name} is not registered with the engine: not measured"
            )
        if opts.only:
            return await self._only(report, runtimes)
        measured: list[Figure] = []
        host_ok = await self._host_has_libraries()
        if not host_ok:
            report["notes"].append(
                "host Python lacks pandas/matplotlib: host figures only for print "
                "(pip install pandas matplotlib to measure them)"
            )
        for snippet in SNIPPETS:
            if snippet == "print" or host_ok:
                opts.progress(f"host / {snippet}")
                measured.append(await self._measure_host(snippet))
        if host_ok:
            report["code_floor"] = await host_floor(self, SNIPPETS)
        if runtimes:
            in_image = await image_floor(self, SNIPPETS, runtimes[0])
            report["code_floor"] += in_image
            if not in_image:
                report["notes"].append("the code floor could not be measured in the image")
        for runtime in runtimes:
            measured += await self._measure_cold_paths(runtime)
            runner = self.runner(runtime, pool_size=opts.pool_size)
            await runner.start()
            try:
                for snippet in SNIPPETS:
                    opts.progress(f"{runtime} / warm / {snippet}")
                    measured.append(await self._measure_warm(runner, runtime, snippet))
                measured += await measure_state(self, runner, runtime)
                # Last: closing the service closes the runner it serves.
                measured += await measure_service(self, runner, runtime)
            finally:
                await runner.close()
        report["results"] = [f.to_dict() for f in measured]
        report["ratios"] = ratios(report["results"])
        if runtimes:
            opts.progress(f"throughput ({runtimes[0]}, {opts.users} users)")
            report["throughput"] = await throughput(self, runtimes[0])
            opts.progress(f"soak ({runtimes[0]}, {opts.soak_runs} runs)")
            report["soak"] = await soak(self, runtimes[0])
            report["load"] = await self._load(runtimes[0])
        report["figures"] = figures(report)
        report["targets"] = judge(report["figures"], opts.targets)
        return report

    async def _only(self, report: dict, runtimes: list[str]) -> dict:
        """`--load` or `--refill`: that part alone, on the first runtime."""
        if runtimes and self.options.only == "load":
            report["load"] = await self._load(runtimes[0])
        elif runtimes:
            self.options.progress(f"refill breakdown ({runtimes[0]})")
            report["refill"] = await self.engine.call(
                refill_breakdown, self, runtimes[0], self.options.repetitions
            )
        report["figures"] = figures(report)
        report["targets"] = judge(report["figures"], self.options.targets)
        return report

    async def _load(self, runtime: str) -> dict:
        load = self.options.load
        self.options.progress(
            f"load ({runtime}, {load.users} users, think {load.think_seconds:g} s, "
            f"{load.seconds:g} s, {load.snippet})"
        )
        result = await load_scenario(self, runtime, load)
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return result

    def runner(
        self, runtime: str, *, pool_size: int, concurrent: int | None = None
    ) -> SandboxRunner:
        update = {"sandbox_runtime": runtime, "sandbox_warm_pool_size": pool_size}
        if concurrent is not None:
            update["sandbox_max_concurrent_runs"] = concurrent
        return Components(self.settings.model_copy(update=update), engine=self.engine).runner

    def request(self, snippet: str, user: str = "bench") -> RunRequest:
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
            sys.executable,
            "-c",
            "import pandas, matplotlib",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait() == 0

    def host_env(self, out: Path) -> dict:
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
                sys.executable,
                "-I",
                "-c",
                SNIPPETS[snippet],
                env=self.host_env(out),
                cwd=out,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            code = await proc.wait()
            elapsed = (time.perf_counter() - started) * 1000
            if code != 0:
                figure.errors += 1
            elif rep:
                figure.samples.append(elapsed)
        return figure

    # bare docker

    async def _measure_cold_paths(self, runtime: str) -> list[Figure]:
        """Bare docker, docker-py's `containers.run` and our cold path, one repetition of each in
        turn: on a small machine the load drifts, and rows measured one block after the other
        would carry that drift into the ratios between them (cold against docker-run)."""
        runner = self.runner(runtime, pool_size=0)
        await runner.start()
        policy = self.policy(runtime)
        measured: list[Figure] = []
        try:
            for snippet in SNIPPETS:
                self.options.progress(f"{runtime} / docker, docker-run, cold / {snippet}")
                docker, docker_run, cold = (
                    Figure(runtime, path, snippet) for path in ("docker", "docker-run", "cold")
                )
                code = ["-c", SNIPPETS[snippet]]
                for rep in range(self.options.repetitions + 1):  # the first one warms caches
                    args = self.bare_args(policy, f"bench-{rep}", code)
                    await self._docker_sample(docker, self._docker_once, args, rep)
                    args = self.bare_args(policy, f"bench-run-{rep}", code)
                    await self._docker_sample(docker_run, self._docker_run_once, args, rep)
                    await self._runner_sample(runner, cold, snippet, rep)
                    await runner.wait_removals()  # before the next container, as docker-run's
                measured += [docker, docker_run, cold]
        finally:
            await runner.close()
        return measured

    async def _docker_sample(
        self, figure: Figure, once: Callable[[dict], tuple[float, int]], args: dict, rep: int
    ) -> None:
        try:
            elapsed, code = await self.engine.call(once, args)
        except Exception:
            figure.errors += 1
            return
        if code != 0:
            figure.errors += 1
        elif rep:
            figure.samples.append(elapsed)

    def policy(self, runtime: str) -> SandboxPolicy:
        update = {"sandbox_runtime": runtime}
        return sandbox_policy(self.settings.model_copy(update=update), owner=owner_token())

    def bare_args(self, policy: SandboxPolicy, run_id: str, python_args: list[str]) -> dict:
        """A bare container of the policy that runs `python -I <python_args>` as the first code
        uid: our snippet or script, never a user's code, and not our warden."""
        uid = policy.code_uid_first
        args = policy.container_args(
            run_id=run_id, user_id="bench", code_uid=uid, input_dir=self.input_dir
        )
        args.pop("stdin_open", None)
        args.pop("stdin_once", None)
        args.update(
            command=[PYTHON, "-I", *python_args],
            user=f"{uid}:{uid}",
            environment=policy.code_environment(),
        )
        return args

    def _docker_once(self, args: dict) -> tuple[float, int]:
        """What a bare docker-py create/start/wait/remove costs (the peers' cold path)."""
        started = time.perf_counter()
        code = self.engine.run_to_completion(args, timeout=120)
        return (time.perf_counter() - started) * 1000, -1 if code is None else code

    def _docker_run_once(self, args: dict) -> tuple[float, int]:
        """What docker-py's `containers.run(..., remove=True)` costs, start to removal."""
        started = time.perf_counter()
        code = self.engine.run_removing(args)
        return (time.perf_counter() - started) * 1000, code

    # our runner

    async def _measure_warm(self, runner: SandboxRunner, runtime: str, snippet: str) -> Figure:
        figure = Figure(runtime, "warm", snippet)
        for rep in range(self.options.repetitions + 1):
            await self._runner_sample(runner, figure, snippet, rep)
        return figure

    async def _runner_sample(
        self, runner: SandboxRunner, figure: Figure, snippet: str, rep: int
    ) -> None:
        timed = await self.timed_run(runner, snippet, figure)
        if rep and timed is not None:
            elapsed, result = timed
            figure.samples.append(elapsed)
            for phase in ("setup", "exec", "collect"):
                seconds = getattr(result, f"{phase}_seconds")
                figure.phases.setdefault(phase, []).append(seconds * 1000)

    async def settle(self, runner: SandboxRunner, quiet: bool = True) -> None:
        """Before a measured run: the previous run's removal done and a container ready; `quiet`
        (the idle rows) also waits for the whole pool, no start under way and the deferred imports
        done, as a user's next message finds the pool after they read the answer: a refill's CPU
        beside the run is the load scenario's to measure, not the idle rows'."""
        await runner.wait_removals()  # the previous run's removal must not overlap this one
        pool = runner.pool
        if pool is None or pool.size == 0:
            return
        if not quiet:
            await pool.wait_ready(1, timeout=300)
            return
        await pool.wait_ready(timeout=300)
        for _ in range(int(300 / 0.02)):  # a start under way ends within its own timeouts
            if not pool.starting:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(SETTLE_SECONDS)

    async def timed_run(
        self, runner: SandboxRunner, snippet: str, figure: Figure, via: SandboxService | None = None
    ) -> tuple[float, RunResult] | None:
        """One run of `snippet` (through `via`, else the runner itself) in ms, once the pool is
        ready and the previous removal done; None, counted on `figure`, when it failed or was
        served cold although a pool is there."""
        await self.settle(runner, quiet=via is None)
        taken_before = runner.pool.stats.taken if runner.pool else 0
        request = self.request(snippet)
        started = time.perf_counter()
        result = await (via or runner).run(request)
        elapsed = (time.perf_counter() - started) * 1000
        shutil.rmtree(request.output_dir, ignore_errors=True)
        collected = snippet != "plot" or any(f.name == "plot.png" for f in result.files)
        if result.status is not RunStatus.OK or not collected:
            figure.errors += 1
            return None
        if runner.pool is not None and runner.pool.stats.taken == taken_before:
            figure.cold_fallbacks += 1
            return None  # served cold: not a warm figure
        return elapsed, result
