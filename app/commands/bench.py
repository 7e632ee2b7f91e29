"""`python -m app bench`: measure the run paths against host Python and bare Docker."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from app.ops.bench import SNIPPETS, Benchmark, BenchOptions
from app.ops.bench_scenario import MAX_LOAD_USERS, LoadOptions
from app.sandbox.engine import EngineError, EngineUnavailable
from app.wiring import Components


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmark host, bare docker, cold and warm runs, and warm via the sandbox service",
        description="Measure p50/p95 of host Python, bare docker, the cold and the warm run path "
        "and the warm path through the sandbox service's socket, for three snippets under runc "
        "and runsc, throughput with concurrent users, and a soak. Progress goes to stderr.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--repetitions",
        type=_count(1),
        default=20,
        metavar="N",
        help="measured repetitions per path and snippet (default 20)",
    )
    parser.add_argument(
        "--users",
        type=_count(1),
        default=4,
        metavar="N",
        help="concurrent users in the throughput test (default 4)",
    )
    parser.add_argument(
        "--throughput-runs",
        type=_count(1),
        default=40,
        metavar="N",
        help="runs in the throughput test (default 40)",
    )
    parser.add_argument(
        "--soak-runs",
        type=_count(0),
        default=500,
        metavar="N",
        help="runs in the soak (default 500; 0 skips it)",
    )
    parser.add_argument(
        "--runtime",
        action="append",
        choices=["runc", "runsc"],
        default=[],
        help="measure only this runtime (repeatable; default: runc and runsc)",
    )
    parser.add_argument(
        "--pool-size",
        type=_count(1),
        default=None,
        metavar="N",
        help="warm pool size for the warm path and soak "
        "(default: SANDBOX_WARM_POOL_SIZE, at least 1)",
    )
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument(
        "--load",
        action="store_true",
        help="only the load scenario: users with exponential think times on the bot's settings",
    )
    parts.add_argument(
        "--refill",
        action="store_true",
        help="only the refill breakdown: where one warm container's time and CPU go",
    )
    parser.add_argument(
        "--load-users",
        type=_count(1, MAX_LOAD_USERS),
        default=6,
        metavar="N",
        help=f"simulated users in the load scenario (default 6, at most {MAX_LOAD_USERS})",
    )
    parser.add_argument(
        "--think-seconds",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="mean of the users' exponential think time (default 3)",
    )
    parser.add_argument(
        "--load-seconds",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="how long the users send runs (default 60)",
    )
    parser.add_argument(
        "--load-snippet",
        choices=sorted(SNIPPETS),
        default="pandas",
        help="what each user's run executes (default pandas)",
    )
    parser.add_argument(
        "--seed",
        type=_count(0),
        default=15,
        metavar="N",
        help="seed of the think times: the same seed sends the same arrivals (default 15)",
    )
    parser.add_argument(
        "--targets",
        type=Path,
        metavar="FILE",
        help="JSON of targets to judge the figures against, e.g. "
        'docs/performance-targets.json ({"figure": {"max": N}} or min)',
    )
    parser.set_defaults(handler=execute)


def _count(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 86400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400 seconds")
    return value


def _targets(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the targets in {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, dict)
        and len(v) == 1
        and set(v) <= {"max", "min"}
        and isinstance(next(iter(v.values())), int | float)
        for v in data.values()
    ):
        raise ValueError(f'{path}: expected {{"figure name": {{"max" or "min": number}}}}')
    return data


def execute(args: argparse.Namespace, parts: Components) -> int:
    settings = parts.settings
    try:
        targets = _targets(args.targets)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = BenchOptions(
        repetitions=args.repetitions,
        users=args.users,
        throughput_runs=args.throughput_runs,
        soak_runs=args.soak_runs,
        runtimes=tuple(args.runtime),
        pool_size=args.pool_size or max(1, settings.sandbox_warm_pool_size),
        progress=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True),
        targets=targets,
        only="load" if args.load else "refill" if args.refill else "",
        load=LoadOptions(
            users=args.load_users,
            think_seconds=args.think_seconds,
            seconds=args.load_seconds,
            snippet=args.load_snippet,
            seed=args.seed,
        ),
    )
    engine = parts.docker
    try:
        engine.ping()
        if engine.image_labels(settings.sandbox_image) is None:
            print(
                f"error: sandbox image {settings.sandbox_image} is missing: "
                "build it with python -m app image build",
                file=sys.stderr,
            )
            return 1
        report = asyncio.run(Benchmark(settings, engine, options).run())
    except (EngineUnavailable, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    leaked = (report.get("soak") or {}).get("leaked_containers", 0)
    leaked += (report.get("load") or {}).get("leaked_containers", 0)
    return 1 if leaked else 0


def print_report(report: dict) -> None:
    machine = report["machine"]
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}, Docker {machine['docker']}, "
        f"load average at start {machine['load_average_at_start']}"
    )
    print(f"image: {report['image']}; {report['repetitions']} measured repetitions per row")
    if report["results"]:
        print_table(report)
    floors: dict[str, list[str]] = {}
    for row in report["code_floor"]:
        floors.setdefault(row.get("where", "host"), []).append(
            f"{row['snippet']} {row['p50_ms']} ms"
        )
    for where, rows in floors.items():
        print(f"\ncode alone ({where}, imports done, forked): " + ", ".join(rows))
    if report.get("ratios"):
        print_ratios(report["ratios"])
    if report.get("throughput"):
        print_throughput(report)
    if report.get("load"):
        print_load(report["load"])
    if report.get("refill"):
        print_refill(report["refill"])
    print_targets(report)


def print_table(report: dict) -> None:
    print(
        f"\n{'runtime':8} {'path':10} {'snippet':7} {'p50 ms':>9} {'p95 ms':>9} {'n':>4} "
        f"{'errors':>6}"
    )
    for row in report["results"]:
        p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.1f}"
        p95 = "-" if row["p95_ms"] is None else f"{row['p95_ms']:.1f}"
        extra = f"  ({row['cold_fallbacks']} served cold)" if row.get("cold_fallbacks") else ""
        if row.get("hop_p50_ms") is not None:
            extra += f"  hop {row['hop_p50_ms']:+.1f} ms over direct {row['direct_p50_ms']:.1f}"
        if row.get("phases_p50_ms"):
            extra += "  p50 " + ", ".join(f"{k} {v:.0f}" for k, v in row["phases_p50_ms"].items())
        print(
            f"{row['runtime']:8} {row['path']:10} {row['snippet']:7} {p50:>9} {p95:>9} "
            f"{row['n']:>4} {row['errors']:>6}{extra}"
        )


def print_ratios(ratios: list[dict]) -> None:
    print("\np50 ratios: against host Python (a), against bare docker (b), warm speed-up")
    for r in ratios:
        speedup = (
            f"  warm {r['speedup_vs_cold']}x faster than cold" if r.get("speedup_vs_cold") else ""
        )
        host = "n/a" if r["vs_host"] is None else f"x{r['vs_host']}"
        docker = "n/a" if r["vs_docker"] is None else f"x{r['vs_docker']}"
        print(
            f"  {r['runtime']:6} {r['path']:5} {r['snippet']:7} {host} host, "
            f"{docker} docker{speedup}"
        )


def print_throughput(report: dict) -> None:
    t = report["throughput"]
    print(
        f"\nthroughput ({t['runtime']}, {t['snippet']}, {t['users']} users): "
        f"{t['runs']} runs in "
        f"{t['seconds']} s = {t['runs_per_second']}/s, p50 {t['p50_ms']} ms, "
        f"p95 {t['p95_ms']} ms, {t['warm']} warm, {t['cold_fallbacks']} cold, "
        f"{t['errors']} errors"
    )
    if report.get("soak"):
        s = report["soak"]
        print(
            f"soak ({s['runtime']}): {s['runs']} runs in {s['seconds']} s, {s['errors']} errors, "
            f"{s['leaked_containers']} leaked containers, {s['leaked_staging_folders']} leaked "
            f"staging folders, RSS {s['rss_start_mb']} -> {s['rss_end_mb']} MiB "
            f"({s['rss_growth_mb']:+} MiB)"
        )


def print_targets(report: dict) -> None:
    if report.get("targets"):
        print("\ntargets:")
        for t in report["targets"]:
            print(
                f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {t['measured']} "
                f"({t['kind']} {t['limit']})"
            )
    for note in report.get("notes", []):
        print(f"note: {note}")


def print_load(load: dict) -> None:
    print(
        f"\nload ({load['runtime']}, {load['snippet']}, {load['users']} users, think "
        f"{load['think_seconds']:g} s, seed {load['seed']}, pool {load['pool_size']}..."
        f"{load['pool_max']}): {load['runs']} runs in {load['seconds']} s, "
        f"{load['errors']} errors, served warm {_fraction(load['warm_fraction'])} "
        f"({load['waited_runs']} of them after waiting for a start; a start took about "
        f"{_ms(load['refill_ms_estimate'])} at the end)"
    )
    print(
        f"  p50 {_ms(load['p50_ms'])}, p95 {_ms(load['p95_ms'])}, p99 {_ms(load['p99_ms'])}; "
        f"cold runs p50 {_ms(load['cold_p50_ms'])}; one refill's CPU p50 "
        f"{_ms(load['refill_cpu_ms_p50'])} ({load['refills_measured']} measured); "
        f"{load['leaked_containers']} leaked containers, "
        f"{load['leaked_staging_folders']} leaked staging folders; "
        f"load average after {load['load_average_after']}"
    )
    served = load.get("served")
    if served:
        print(
            "  by how runs were served: "
            + "; ".join(
                f"{path} {row['runs']} (p50 {_ms(row['p50_ms'])}, p95 {_ms(row['p95_ms'])})"
                for path, row in served.items()
            )
        )
    machine = load.get("machine_cpu")
    if machine:
        print(
            f"  the cores {_fraction(machine['busy_fraction'])} busy"
            f"{_stolen(machine.get('steal_fraction'))}; CPU per run "
            f"{_ms(machine['per_run_ms'])} for the whole machine (containers, engine, kernel), "
            f"{_ms(machine['bench_per_run_ms'])} of it this process"
        )
    points = load["pool_over_time"]
    if points:
        step = max(1, len(points) // 12)
        print(
            "  pool over time (s: ready+starting/target): "
            + ", ".join(
                f"{p['t']:g}: {p['ready']}+{p['starting']}/{p['target']}" for p in points[::step]
            )
        )


def print_refill(refill: dict) -> None:
    print(f"\nrefill breakdown ({refill['runtime']}), p50 ms of {refill['repetitions']} each:")
    for row in refill["variants"]:
        phases = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in row.items() if k.endswith("_ms"))
        print(f"  preload {row['preload']}: {phases}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _stolen(value: float | None) -> str:
    """The hypervisor's share, when it took one worth naming (another guest's load, not ours)."""
    return f", {value:.0%} more taken by the hypervisor (steal)" if value and value >= 0.005 else ""
