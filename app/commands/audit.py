"""`python -m app audit [--json]`: the effective sandbox policy and the image's state, checked."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.ops.audit import AuditReport, SandboxAudit
from app.ops.audit_service import service_checks
from app.sandbox import EngineError, EngineUnavailable, SandboxUnavailable
from app.sandbox.summary import policy_summary
from app.sandboxd import ServiceAddress
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
        "containerd and runsc versions, core_pattern, user namespaces). With SANDBOX_SERVICE_URL "
        "set, also reads the sandbox service's policy and checks it is the one these settings "
        "describe (without a Docker engine here, that is all it checks). Exit status 1 when a "
        "check fails; each failure names its fix; host warnings do not fail it.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    try:
        service = asyncio.run(_service_policy(parts)) if parts.uses_service else None
        if service is not None and not _engine_here(parts):
            report = AuditReport(
                image=str(service[0].get("image")), runtime=str(service[0].get("runtime"))
            )
        else:
            engine = parts.docker
            engine.ping()
            report = SandboxAudit(parts.policy, engine, parts.layout).run()
        if service is not None:
            service_checks(
                report,
                parts.settings.sandbox_service_url,
                policy_summary(parts.policy),
                service[0],
                parts.settings.code_execution_timeout,
                service[1],
            )
    except (EngineUnavailable, EngineError, OSError, SandboxUnavailable) as exc:
        message = str(exc)
        if args.json:
            print(json.dumps({"ok": False, "error": message}))
        else:
            fix = (
                "start the sandbox service and check SANDBOX_SERVICE_URL"
                if isinstance(exc, SandboxUnavailable)
                else "start Docker, then `python -m app doctor`"
            )
            print(f"FAIL  audit could not run: {message}\n      fix: {fix}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        asyncio.run(parts.close())
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print(report)
    return EXIT_OK if report.ok else EXIT_FAILED


async def _service_policy(parts: Components) -> tuple[dict, float]:
    """The policy the sandbox service applies and its time limit (SandboxUnavailable if it does
    not answer)."""
    client = parts.sandbox_client(ServiceAddress.parse(parts.settings.sandbox_service_url))
    try:
        health = await client.health()
        return await client.describe_policy(), float(health.get("max_timeout") or 0)
    finally:
        await client.close()


def _engine_here(parts: Components) -> bool:
    """Whether this process can reach a Docker engine for the probe (the bot in compose cannot)."""
    try:
        parts.docker.ping()
    except EngineUnavailable:
        return False
    return True


def _print(report: AuditReport) -> None:
    print(f"image {report.image} · runtime {report.runtime}")
    if report.service:
        print(f"\nsandbox service {report.service['address']} applies:")
        for key, value in report.service["policy"].items():
            print(f"  {key:20} {value}")
    if report.effective_policy:
        print("\neffective policy (as the engine reports it for a probe container):")
    elif report.service:
        print(
            "\nno Docker engine here for a probe container: run the audit where the service "
            "runs too (e.g. `docker compose exec sandbox python -m app audit`)"
        )
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
    if report.python_packages or not report.service:
        print(f"\npython packages ({len(report.python_packages)}):")
        print("  " + ", ".join(f"{p['name']}=={p['version']}" for p in report.python_packages))
        print(f"\nSBOM: {report.sbom or 'none'}")
    failed = [c for c in report.checks if not c.ok and not c.warning]
    warned = [c for c in report.checks if not c.ok and c.warning]
    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed"
    print(f"\n{summary}" + (f", {len(warned)} warning(s)" if warned else ""))
