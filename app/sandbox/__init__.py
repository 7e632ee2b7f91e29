"""The sandbox: one hardened, short-lived container per code run. Nothing here imports discord."""

from app.config import Settings
from app.sandbox.engine import DockerEngine, EngineUnavailable
from app.sandbox.packages import PackageCache, PackageCatalog, PackageInstaller
from app.sandbox.policy import SandboxPolicy
from app.sandbox.result import InputFile, OutputFile, RunRequest, RunResult, RunStatus, SkippedOutput
from app.sandbox.runner import OWNER_LABEL, SandboxRunner, owner_token
from app.sandbox.slots import RunSlots

__all__ = [
    "DockerEngine",
    "EngineUnavailable",
    "InputFile",
    "OutputFile",
    "RunRequest",
    "RunResult",
    "RunSlots",
    "RunStatus",
    "PackageInstaller",
    "SandboxPolicy",
    "SandboxRunner",
    "SkippedOutput",
    "create_package_installer",
    "create_runner",
]


def create_package_installer(settings: Settings, engine: DockerEngine) -> PackageInstaller:
    """The package install step and cache every entry point uses, built from settings."""
    return PackageInstaller(
        SandboxPolicy.from_settings(settings),
        engine,
        PackageCache(settings.data_dir / "packages"),
        PackageCatalog.from_settings(settings.package_approved, settings.package_import_names),
        ca_bundle=settings.package_ca_bundle,
        owner_label=(OWNER_LABEL, owner_token()),
    )


def create_runner(settings: Settings, engine: DockerEngine | None = None) -> SandboxRunner:
    """The runner every entry point uses (bot, `run`, `chat`), built from settings.

    The warm pool runs only once `await runner.start()` is called (long-lived processes); a
    one-shot command that just calls `run()` starts every run cold and removes it inline.
    """
    capacity = settings.sandbox_max_concurrent_runs
    engine = engine or DockerEngine(max_workers=capacity * 3 + 4)
    return SandboxRunner(
        SandboxPolicy.from_settings(settings),
        engine,
        max_timeout=settings.code_execution_timeout,
        slots=RunSlots(capacity),
        packages=create_package_installer(settings, engine) if settings.package_auto_install else None,
        warm_pool_size=settings.sandbox_warm_pool_size,
        warm_pool_max_age=settings.sandbox_warm_pool_max_age,
    )
