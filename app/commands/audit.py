"""`python -m app audit [--json]`: the effective sandbox policy and the image's state, checked."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.ops.audit import AuditReport, SandboxAudit
from app.sandbox import EngineError, EngineUnavailable
from app.wiring import Components

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "audit",
        help="show the effective sandbox policy and check the image",
        description="Starts a probe container exactly as a run would, prints every setting that "
        "matters as the Docker engine reports it, and checks the image from inside (non-root, no "
        "setuid files, nothing writable but the output folder and /tmp, no secrets, no sudo/su/"
        "docker, seccomp filter, io_uring refused, Python packages) and the host (kernel, runc, "
        "containerd and runsc versions, core_pattern, user namespaces). Exit status 1 when a "
        "check fails; each failure names its fix; host warnings do not fail it.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    try:
        engine = parts.docker
        engine.ping()
        report = SandboxAudit(parts.policy, engine, parts.layout).run()
    except (EngineUnavailable, EngineError, OSError) as exc:
        message = str(exc)
        if args.json:
            print(json.dumps({"ok": False, "error": message}))
        else:
            print(
                f"FAIL  audit could not run: {message}\n      fix: start Docker, then "
                "`python -m app doctor`",
                file=sys.stderr,
            )
        return EXIT_FAILED
    finally:
        asyncio.run(parts.close())
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print(report: AuditReport) -> None:
    print(f"image {report.image} · runtime {report.runtime}")
    print("\neffective policy (as the engine reports it for a probe container):")
    for key, value in report.effective_policy.items():
        shown = json.dumps(value) if isinstance(value, (dict, list)) else value
        print(f"  {key:16} {shown}")
    print("\nversions: " + ", ".join(f"{k} {v or 'unknown'}" for k, v in report.versions.items()))
    print("\nchecks:")
    for check in report.checks:
        mark = "ok  " if check.ok else "WARN" if check.warning else "FAIL"
        print(f"  {mark}  {check.name}: {check.detail}")
        if not check.ok:
            print(f"        fix: {check.fix}")
    print(f"\npython packages ({len(report.python_packages)}):")
    print("  " + ", ".join(f"{p['name']}=={p['version']}" for p in report.python_packages))
    print(f"\nSBOM: {report.sbom or 'none'}")
    failed = [c for c in report.checks if not c.ok and not c.warning]
    warned = [c for c in report.checks if not c.ok and c.warning]
    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed"
    print(f"\n{summary}" + (f", {len(warned)} warning(s)" if warned else ""))
