"""The one retry of a run that died on a missing approved package: the package is installed and
the run goes once more, no more; the result then tells what was installed and, when it still
failed on a package, why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from app.sandbox.packages.installer import PackageInstaller, PackagePlan
from app.sandbox.result import RunResult, RunStatus

log = structlog.get_logger(__name__)


async def package_fallback(
    installer: PackageInstaller,
    plan: PackagePlan,
    result: RunResult,
    run_again: Callable[[], Awaitable[RunResult]],
    run_id: str,
    user_id: str,
) -> RunResult:
    """`result` of the first attempt; `run_again` makes the second (in a run slot of its own)."""
    if result.status is RunStatus.ERROR and await installer.fallback(
        plan, result.stderr, run_id, user_id
    ):
        log.info("running again with the missing package installed")
        for stale in result.files:  # the first attempt's outputs are replaced, not mixed in
            stale.path.unlink(missing_ok=True)
        result = await run_again()
        if result.status is RunStatus.ERROR:
            await installer.install_for_next_run(plan, result.stderr, run_id, user_id)
    message = result.message
    if result.status is RunStatus.ERROR:
        extra = installer.explain(plan, result.stderr)
        message = f"{message}; {extra}" if message and extra else (message or extra)
    return replace(
        result,
        install_seconds=plan.install_seconds,
        installed_packages=tuple(plan.installed),
        message=message,
    )
