"""The figures of a benchmark: samples into percentiles, ratios between paths, the headline
figures by name, and targets judged against them (never enforced). Pure functions of the report,
so they are tested without Docker."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field

from app.sandbox.docker_engine import DockerEngine
from app.sandbox.pool_sizing import cpu_fields

HOST_RUNTIME = "host"
SNIPPET_NAMES = ("print", "pandas", "plot")


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
    baseline: list[float] = field(default_factory=list)
    """The service path: the direct warm run just before each of `samples`."""
    hops: list[float] = field(default_factory=list)
    """The service path: per run, its time at the client minus the runner's time for it."""
    added: list[float] = field(default_factory=list)
    """The state path: per pair, the run in a session minus the plain warm run before it."""

    def to_dict(self) -> dict:
        p50, p95 = percentile(self.samples, 50), percentile(self.samples, 95)
        p99 = percentile(self.samples, 99)
        data: dict[str, object] = {
            "runtime": self.runtime,
            "path": self.path,
            "snippet": self.snippet,
            "p50_ms": round(p50, 1) if p50 is not None else None,
            "p95_ms": round(p95, 1) if p95 is not None else None,
            "p99_ms": round(p99, 1) if p99 is not None else None,
            "n": len(self.samples),
            "errors": self.errors,
        }
        if self.path in ("warm", "service", "state"):
            data["cold_fallbacks"] = self.cold_fallbacks
        if self.baseline:
            data["direct_p50_ms"] = round(percentile(self.baseline, 50) or 0.0, 2)
        if self.hops:
            data["hop_p50_ms"] = round(percentile(self.hops, 50) or 0.0, 2)
            data["hop_p95_ms"] = round(percentile(self.hops, 95) or 0.0, 2)
        if self.added:
            data["added_p50_ms"] = round(percentile(self.added, 50) or 0.0, 2)
        if self.phases:
            data["phases_p50_ms"] = {
                name: round(percentile(values, 50) or 0.0, 1)
                for name, values in self.phases.items()
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


LOCAL_ENGINE = "unix://"


def machine_busy_seconds() -> tuple[float, float] | None:
    """(work, stolen): CPU seconds since boot that every core spent on this machine's own work
    (user, nice, system, irq, softirq) and that a hypervisor gave to other guests while this
    one's were runnable (steal); None off Linux. Stolen time is no work of the runs', so it is
    kept apart from what a run costs; a noisy neighbour shows as steal."""
    fields = cpu_fields()
    if fields is None:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal


def local_engine() -> bool:
    """Whether the engine runs on this machine, so its CPU shows in this /proc/stat."""
    return os.environ.get("DOCKER_HOST", LOCAL_ENGINE).startswith(LOCAL_ENGINE)


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


def figures(report: dict) -> dict[str, float]:
    """The headline figures, by name: what targets are set against."""
    p50 = {(r["runtime"], r["path"], r["snippet"]): r["p50_ms"] for r in report["results"]}
    found: dict[str, float] = {}

    def put(name: str, value: float | None) -> None:
        if value is not None:
            found[name] = round(value, 2)

    hops = {
        (r["runtime"], r["snippet"]): r.get("hop_p50_ms")
        for r in report["results"]
        if r["path"] == "service"
    }
    p99 = {(r["runtime"], r["path"], r["snippet"]): r.get("p99_ms") for r in report["results"]}
    added = {
        (r["runtime"], r["snippet"]): r.get("added_p50_ms")
        for r in report["results"]
        if r["path"] == "state"
    }
    for runtime in ("runc", "runsc"):
        warm, cold = p50.get((runtime, "warm", "pandas")), p50.get((runtime, "cold", "pandas"))
        put(f"{runtime} warm pandas p50 ms", warm)
        put(f"{runtime} warm pandas p99 ms", p99.get((runtime, "warm", "pandas")))
        cold_print, run_print = (
            p50.get((runtime, "cold", "print")),
            p50.get((runtime, "docker-run", "print")),
        )
        if cold_print and run_print:
            put(f"{runtime} cold print vs docker-py run x", cold_print / run_print)
        put(f"{runtime} warm via service pandas p50 ms", p50.get((runtime, "service", "pandas")))
        put(f"{runtime} service hop pandas p50 ms", hops.get((runtime, "pandas")))
        if warm and cold:
            put(f"{runtime} warm pandas speed-up over cold x", cold / warm)
        for size in ("empty", "1mb", "100mb"):
            put(f"{runtime} state {size} added p50 ms", added.get((runtime, size)))
        for snippet in SNIPPET_NAMES:
            cold_s, docker_s = (
                p50.get((runtime, "cold", snippet)),
                p50.get((runtime, "docker", snippet)),
            )
            if cold_s and docker_s:
                put(f"{runtime} cold {snippet} vs bare docker x", cold_s / docker_s)
    soak = report.get("soak")
    if soak:
        put("soak leaked containers", soak["leaked_containers"])
    load = report.get("load")
    if load:
        for key in ("warm_fraction", "p95_ms", "errors", "leaked_containers"):
            put(f"load {key.replace('_ms', ' ms').replace('_', ' ')}", load.get(key))
    return found


def judge(found: dict[str, float], targets: dict[str, dict[str, float]]) -> list[dict]:
    """Each target with the measured figure and whether it was met (never asserted)."""
    checks = []
    for name, bound in targets.items():
        if name not in found:
            continue
        value = found[name]
        if "max" in bound:
            met, limit, kind = value <= bound["max"], bound["max"], "max"
        else:
            met, limit, kind = value >= bound["min"], bound["min"], "min"
        checks.append({"target": name, "measured": value, "limit": limit, "kind": kind, "met": met})
    return checks
