"""The sandbox: one hardened, short-lived container per code run. Nothing here imports discord."""

from app.config import Settings
from app.sandbox.engine import DockerEngine, EngineUnavailable
from app.sandbox.policy import SandboxPolicy
from app.sandbox.result import InputFile, OutputFile, RunRequest, RunResult, RunStatus, SkippedOutput
from app.sandbox.runner import SandboxRunner
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
    "SandboxPolicy",
    "SandboxRunner",
    "SkippedOutput",
    "create_runner",
]


def create_runner(settings: Settings, engine: DockerEngine | None = None) -> SandboxRunner:
    """The runner every entry point uses (bot, `run`, `chat`), built from settings.

    The warm pool runs only once `await runner.start()` is called (long-lived processes); a
    one-shot command that just calls `run()` starts every run cold and removes it inline.
    """
    capacity = settings.sandbox_max_concurrent_runs
    return SandboxRunner(
        SandboxPolicy.from_settings(settings),
        engine or DockerEngine(max_workers=capacity * 3 + 4),
        max_timeout=settings.code_execution_timeout,
        slots=RunSlots(capacity),
        warm_pool_size=settings.sandbox_warm_pool_size,
        warm_pool_max_age=settings.sandbox_warm_pool_max_age,
    )
