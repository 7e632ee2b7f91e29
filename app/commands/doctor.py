"""`python -m app doctor`: check what a run needs and say what to fix."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import uuid

from app.chat.run_files import typed_input
from app.config import Settings
from app.files import StorageUnavailable
from app.ops.image import HASH_LABEL, SOURCE_DIR, source_hash
from app.sandbox import (
    EngineError,
    EngineUnavailable,
    RunRequest,
    RunResult,
    SandboxUnavailable,
)
from app.sandbox.docker_engine import DockerEngine
from app.sandboxd import ServiceAddress
from app.wiring import Components

INDEX_PROBE = "toolz"  # small, approved by default, on every index that mirrors PyPI


def add_parser(sub) -> None:
    parser = sub.add_parser("doctor", help="check Docker, the image, runtimes and the data dir")
    parser.add_argument("--no-probe", action="store_true", help="skip the test run")
    parser.set_defaults(handler=execute)


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def ok(self, what: str, detail: str = "") -> None:
        print(f"ok    {what}" + (f": {detail}" if detail else ""))

    def warn(self, what: str, fix: str) -> None:
        print(f"warn  {what}\n      fix: {fix}")

    def fail(self, what: str, fix: str) -> None:
        self.failures += 1
        print(f"FAIL  {what}\n      fix: {fix}")


def execute(args: argparse.Namespace, parts: Components) -> int:
    report = Report()
    settings = parts.settings
    _check_data_dir(report, settings)
    _check_file_metadata(report, parts)
    if parts.uses_service:
        return _service_checks(args, report, parts)
    try:
        engine = parts.docker
        if _check_engine(report, engine, settings):
            image_ok = _check_image(report, engine, settings)
            _check_leftovers(report, parts)
            if image_ok:
                _check_packages(report, parts)
            if image_ok and not args.no_probe:
                _probe(report, parts)
    finally:
        asyncio.run(parts.close())
    print("all checks passed" if report.failures == 0 else f"{report.failures} check(s) failed")
    return 0 if report.failures == 0 else 1


def _service_checks(args: argparse.Namespace, report: Report, parts: Components) -> int:
    """With SANDBOX_SERVICE_URL, the engine and the image are the service's: ask it, then run
    the probe through it (files over its API, its mounts, its image)."""
    asyncio.run(_ask_service(args, report, parts))
    print("all checks passed" if report.failures == 0 else f"{report.failures} check(s) failed")
    return 0 if report.failures == 0 else 1


async def _ask_service(args: argparse.Namespace, report: Report, parts: Components) -> None:
    client = parts.sandbox_client(ServiceAddress.parse(parts.settings.sandbox_service_url))
    try:
        health = await client.health()
        status = await client.status()
        report.ok(
            "sandbox service",
            f"{status.where}: image {health.get('image')}, runtime {health.get('runtime')}, "
            f"{status.capacity} slots, {status.warm_ready} of {status.warm_size} warm",
        )
        if not args.no_probe:
            token = uuid.uuid4().hex
            _judge_probe(report, await _probe_run(parts, token), token)
    except SandboxUnavailable as exc:
        engine_down = "Docker engine" in str(exc)
        report.fail(
            str(exc),
            "start (or wait for) the Docker engine on the sandbox service's host: runs are "
            "sandbox_error until it answers, then the service's warm pool refills by itself"
            if engine_down
            else "start it (`python -m app sandboxd`, or the compose `sandbox` service) and "
            "check SANDBOX_SERVICE_URL and SANDBOX_SERVICE_TOKEN",
        )
    finally:
        await client.close()
        await parts.close()


def _check_data_dir(report: Report, settings: Settings) -> None:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
        report.ok("data dir writable", str(path.resolve()))
    except OSError as exc:
        report.fail(
            f"data dir {path} is not writable ({exc.strerror})",
            "set DATA_DIR to a writable folder or fix its permissions",
        )


def _check_file_metadata(report: Report, parts: Components) -> None:
    settings = parts.settings

    async def check() -> str:
        # Its own parts: the store's MongoDB client belongs to this event loop only.
        probe = Components(settings)
        try:
            await probe.file_store()
            return probe.store_description
        finally:
            await probe.close()

    try:
        where = asyncio.run(check())
    except StorageUnavailable as exc:
        fix = (
            "start MongoDB or fix MONGODB_URI (docs/operations.md, Troubleshooting)"
            if settings.mongodb_uri is not None
            else "make DATA_DIR writable by this user, or set MONGODB_URI"
        )
        report.fail(str(exc), fix)
        return
    report.ok("file metadata, conversations and usage", where)


def _check_engine(report: Report, engine: DockerEngine, settings: Settings) -> bool:
    try:
        engine.ping()
        info = engine.info()
    except (EngineUnavailable, EngineError) as exc:
        report.fail(
            str(exc), "start dockerd (see docs/operations.md, Troubleshooting) or set DOCKER_HOST"
        )
        return False
    report.ok(
        "Docker engine", f"{info.get('ServerVersion')}, cgroup v{info.get('CgroupVersion', '?')}"
    )
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    if settings.sandbox_runtime in runtimes:
        report.ok(f"runtime {settings.sandbox_runtime}", "available (" + ", ".join(runtimes) + ")")
    else:
        report.fail(
            f"runtime {settings.sandbox_runtime} is not registered with the engine",
            "install gVisor (apt-get install runsc) and register it in "
            "/etc/docker/daemon.json (docs/security.md, gVisor), or set SANDBOX_RUNTIME=runc",
        )
    if settings.sandbox_runtime == "runc" and "runsc" not in runtimes:
        report.warn("gVisor (runsc) is not available", "optional: docs/security.md, gVisor")
    cpus = info.get("NCPU") or os.cpu_count() or 1
    if settings.sandbox_cpus > cpus:
        report.fail(
            f"SANDBOX_CPUS={settings.sandbox_cpus:g} but the engine has {cpus} CPUs",
            f"set SANDBOX_CPUS to at most {cpus}",
        )
    return True


def _check_leftovers(report: Report, parts: Components) -> None:
    """Sandboxes an outage or a crash left stopped (they end by themselves; removal waits)."""
    count = asyncio.run(parts.runner.count_leftovers())
    if count:
        report.warn(
            f"{count} leftover sandbox container(s) of instance {parts.settings.sandbox_instance}"
            " (stopped, or of a process that is gone)",
            "they are removed at the next start or cleanup (`python -m app cleanup`)",
        )


def _check_image(report: Report, engine: DockerEngine, settings: Settings) -> bool:
    labels = engine.image_labels(settings.sandbox_image)
    if labels is None:
        report.fail(
            f"sandbox image {settings.sandbox_image} is missing",
            "build it: python -m app image build",
        )
        return False
    built_from = labels.get(HASH_LABEL, "unknown")
    if SOURCE_DIR.is_dir() and built_from != source_hash():
        report.warn(
            f"sandbox image {settings.sandbox_image} was built from other sources "
            f"(hash {built_from}, sources {source_hash()})",
            "rebuild it: python -m app image build",
        )
    else:
        report.ok("sandbox image", f"{settings.sandbox_image} (hash {built_from})")
    return True


def _check_packages(report: Report, parts: Components) -> None:
    if not parts.settings.package_auto_install:
        report.ok("package auto-install", "off (PACKAGE_AUTO_INSTALL=false)")
        return
    installer = parts.installer
    if not asyncio.run(installer.image_has_module_list()):
        report.warn(
            "the sandbox image has no module list, so packages are installed only after "
            "a run fails on a missing import",
            "rebuild it: python -m app image build",
        )
        return
    cached = len(installer.cache.entries())
    report.ok(
        "package auto-install",
        f"{len(installer.catalog.approved)} approved packages, {cached} cached in "
        f"{installer.cache.root}",
    )
    approved = sorted(installer.catalog.approved)
    if not approved:
        return
    probe = INDEX_PROBE if INDEX_PROBE in approved else approved[0]
    outcome = asyncio.run(installer.check_index(probe))
    if outcome.reason:
        report.fail(
            f"the package index does not answer from an install container: {outcome.reason}",
            "see docs/packages.md (TLS-intercepting proxies: PACKAGE_CA_BUNDLE), or set "
            "PACKAGE_AUTO_INSTALL=false",
        )
    else:
        report.ok("package index", f"answers from an install container ({probe} {outcome.version})")


def _probe(report: Report, parts: Components) -> None:
    """A real run that reads a file through the input mount, so a wrong HOST_DATA_DIR shows."""
    token = uuid.uuid4().hex
    _judge_probe(report, asyncio.run(_probe_run(parts, token)), token)


async def _probe_run(parts: Components, token: str) -> RunResult:
    work = parts.layout.new_tmp_dir("doctor-")
    (work / "input").mkdir()
    (work / "input" / "probe.txt").write_text(token)
    probe = typed_input("probe", "probe.txt", "probe.txt", len(token))
    try:
        result = await parts.sandbox.run(
            RunRequest(
                code="print(load_file('probe'))",
                user_id="doctor",
                output_dir=work / "output",
                input_dir=work / "input",
                files=(probe,),
                timeout=60,
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _judge_probe(report: Report, result: RunResult, token: str) -> None:
    if result.succeeded and result.stdout.strip() == token:
        report.ok(
            "test run", f"setup {result.setup_seconds:.2f} s, exec {result.exec_seconds:.2f} s"
        )
    elif "HOST_DATA_DIR" in result.message or "FileNotFoundError" in result.stderr:
        report.fail(
            "the sandbox cannot see files under DATA_DIR through its bind mount",
            "when the sandbox runs in a container, set HOST_DATA_DIR to the host path of its "
            "DATA_DIR",
        )
    else:
        detail = result.message or result.stderr.strip()[-300:]
        report.fail(
            f"test run ended {result.status.value}: {detail}",
            "see docs/operations.md, Troubleshooting",
        )
