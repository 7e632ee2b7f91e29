"""`python -m app bench` runs end to end and prints the documented JSON shape (figures not judged)."""

import json
import os
import subprocess
import sys


def test_bench_json_has_the_documented_shape(settings, tmp_path):
    env = {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "SANDBOX_INSTANCE": settings.sandbox_instance,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "bench",
            "--json",
            "--repetitions",
            "1",
            "--users",
            "2",
            "--throughput-runs",
            "2",
            "--soak-runs",
            "3",
            "--runtime",
            "runc",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    rows = report["results"]
    for row in rows:
        assert {"runtime", "path", "snippet", "p50_ms", "p95_ms", "n"} <= set(row)
    measured = {(r["runtime"], r["path"], r["snippet"]) for r in rows if r["n"] == 1}
    for snippet in ("print", "pandas", "plot"):
        for path in ("docker", "cold", "warm"):
            assert ("runc", path, snippet) in measured, (path, snippet, rows)
    assert ("host", "host", "print") in measured
    for size in ("empty", "1mb", "100mb"):  # warm with state: restored and saved
        row = next(r for r in rows if (r["path"], r["snippet"]) == ("state", size))
        # served warm like the plain warm rows (the pool is waited for before each run)
        assert row["errors"] == 0 and row["n"] == 1, row
        assert {"added_p50_ms", "direct_p50_ms"} <= set(row), row
    assert all(r["errors"] == 0 for r in rows), rows
    assert report["throughput"]["runs"] == 2 and report["throughput"]["errors"] == 0
    soak = report["soak"]
    assert soak["runs"] == 3 and soak["errors"] == 0
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
