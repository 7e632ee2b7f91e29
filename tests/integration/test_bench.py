"""`python -m app bench` runs end to end and prints the documented JSON shape (figures not judged)."""

import json
import os
import subprocess
import sys


def test_bench_json_has_the_documented_shape(settings, tmp_path):
    proc = _bench(
        settings,
        tmp_path,
        *("--json", "--repetitions", "1", "--users", "2", "--throughput-runs", "2"),
        *("--soak-runs", "3", "--load-users", "1", "--load-seconds", "2"),
        *("--think-seconds", "0.3"),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    rows = report["results"]
    for row in rows:
        assert {"runtime", "path", "snippet", "p50_ms", "p95_ms", "n"} <= set(row)
    measured = {(r["runtime"], r["path"], r["snippet"]) for r in rows if r["n"] == 1}
    for snippet in ("print", "pandas", "plot"):
        for path in ("docker", "docker-run", "cold", "warm"):
            assert ("runc", path, snippet) in measured, (path, snippet, rows)
    assert ("host", "host", "print") in measured
    # What the code alone costs in the image (forked, imports done), for every snippet.
    floor = {r["snippet"]: r for r in report["code_floor"] if r["where"] == "image (runc)"}
    assert set(floor) == {"print", "pandas", "plot"}, report["code_floor"]
    assert all(r["n"] == 1 and r["p50_ms"] > 0 for r in floor.values()), floor
    for size in ("empty", "1mb", "100mb"):  # warm with state: restored and saved
        row = next(r for r in rows if (r["path"], r["snippet"]) == ("state", size))
        # served warm like the plain warm rows (the pool is waited for before each run)
        assert row["errors"] == 0 and row["n"] == 1, row
        assert {"added_p50_ms", "direct_p50_ms"} <= set(row), row
    assert all(r["errors"] == 0 for r in rows), rows
    assert report["throughput"]["runs"] == 2 and report["throughput"]["errors"] == 0
    soak = report["soak"]
    assert soak["runs"] == 3 and soak["errors"] == 0
    assert report["load"]["runs"] >= 1 and report["load"]["errors"] == 0
    assert soak["leaked_containers"] == 0 and soak["leaked_staging_folders"] == 0
    assert isinstance(soak["rss_growth_mb"], float)
    assert any(r["path"] == "warm" and r["vs_docker"] for r in report["ratios"])
    assert "bench: runc / warm / pandas" in proc.stderr  # progress goes to stderr only


def test_bench_rejects_bad_repetitions_without_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "app", "bench", "--repetitions", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "must be at least 1" in proc.stderr and "Traceback" not in proc.stderr


def _bench(settings, tmp_path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "SANDBOX_INSTANCE": settings.sandbox_instance,
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "bench", *args, "--runtime", "runc"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bench_load_reports_every_field_and_leaves_nothing(settings, engine, tmp_path):
    proc = _bench(
        settings,
        tmp_path,
        "--load",
        "--json",
        "--load-users",
        "3",
        "--think-seconds",
        "0.5",
        "--load-seconds",
        "4",
        "--seed",
        "7",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    load = report["load"]
    expected = {
        "users", "think_seconds", "seconds", "runs", "errors", "warm_fraction", "p50_ms",
        "p95_ms", "p99_ms", "cold_p50_ms", "refill_cpu_ms_p50", "pool_over_time", "seed",
        "leaked_containers", "leaked_staging_folders", "load_average_after",
        "starts_without_deferred", "waited_runs", "refill_ms_estimate",
    }  # fmt: skip
    assert expected <= set(load), sorted(expected - set(load))
    assert load["users"] == 3 and load["think_seconds"] == 0.5 and load["seed"] == 7
    assert load["runs"] >= 3 and load["errors"] == 0
    assert 0.0 <= load["warm_fraction"] <= 1.0
    assert load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"]
    assert load["refill_cpu_ms_p50"] > 0  # the pool was full at the start: measured
    assert 0 <= load["waited_runs"] <= load["warm_runs"] and load["refill_ms_estimate"] > 0
    served = load["served"]  # every run counted once, by how it was served
    assert set(served) == {"ready", "waited", "cold"}
    assert sum(path["runs"] for path in served.values()) == load["runs"]
    assert served["waited"]["runs"] == load["waited_runs"]
    assert served["ready"]["runs"] + served["waited"]["runs"] == load["warm_runs"]
    assert served["ready"]["runs"] >= 1 and served["ready"]["p50_ms"] <= served["ready"]["p95_ms"]
    points = load["pool_over_time"]
    assert points and all(p["ready"] + p["starting"] <= load["pool_max"] for p in points)
    assert all(load["pool_size"] <= p["target"] <= load["pool_max"] for p in points)
    assert load["leaked_containers"] == 0 and load["leaked_staging_folders"] == 0
    machine = load["machine_cpu"]  # the suite's engine is local: where the cores went is shown
    assert 0 < machine["busy_fraction"] <= 1.0 and 0 <= machine["steal_fraction"] < 1.0
    assert 0 < machine["bench_per_run_ms"] < machine["per_run_ms"]
    assert report["results"] == []  # --load measures the load alone
    staging = settings.data_dir / "pool"
    assert not staging.is_dir() or list(staging.iterdir()) == []


def test_bench_load_text_output_and_bad_input(settings, tmp_path):
    proc = _bench(settings, tmp_path, "--load", "--think-seconds", "0", "--load-seconds", "1")
    assert proc.returncode == 2
    assert "must be more than 0" in proc.stderr and "Traceback" not in proc.stderr
    proc = _bench(settings, tmp_path, "--load", "--refill")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
    proc = _bench(settings, tmp_path, "--load", "--load-users", "100000", "--load-seconds", "1")
    assert proc.returncode == 2 and "must be at most 1000" in proc.stderr  # not "0 runs"


def test_bench_refill_breaks_a_refill_down(settings, tmp_path):
    proc = _bench(settings, tmp_path, "--refill", "--json", "--repetitions", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    refill = json.loads(proc.stdout)["refill"]
    rows = {row["preload"]: row for row in refill["variants"]}
    assert "none" in rows and len(rows) >= 2
    for row in rows.values():
        for phase in ("claim", "create", "attach", "start", "runner_exec", "ready", "remove"):
            assert row[f"{phase}_ms"] >= 0, (phase, row)
        assert row["cpu_ms"] > 0
        assert row["engine_cpu_ms"] > 0  # the suite's engine is local: its start's CPU is shown
