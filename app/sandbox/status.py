"""What a run's facts mean: its status and the sentence that explains it, and the message of a
run the infrastructure failed (sandbox_error), with the fix where there is one."""

from __future__ import annotations

import signal

import structlog

from app.sandbox.engine import EngineError, EngineUnavailable, ImageMissing
from app.sandbox.policy import HostPathError
from app.sandbox.result import RunStatus
from app.sandbox.starter import IMAGE_BUILD_HINT, RunnerNotReady

log = structlog.get_logger(__name__)


def classify(
    *,
    timed_out: bool,
    exit_code: int | None,
    oom_kills: int,
    container_oom: bool,
    sandbox_stopped: bool = False,
) -> RunStatus:
    if timed_out:
        return RunStatus.TIMEOUT
    if sandbox_stopped:
        # The whole sandbox died under the code (gVisor: its kernel hit the process or memory
        # limit); whatever exit status the runner's stream reported is not the code's.
        return RunStatus.OOM if container_oom else RunStatus.KILLED
    if exit_code == 0:
        return RunStatus.OK
    if container_oom or oom_kills > 0:
        return RunStatus.OOM
    if exit_code is None or exit_code > 128:
        return RunStatus.KILLED
    return RunStatus.ERROR


def explain(
    status: RunStatus, exit_code: int | None, timeout: float, memory: int, stopped: bool = False
) -> str:
    """The message of a RunResult: what happened, for every status but ok."""
    if status is RunStatus.TIMEOUT:
        return f"the code ran longer than the {timeout:g} s limit and was stopped"
    if status is RunStatus.OOM:
        return f"the code ran out of memory (limit {memory // 1024**2} MiB) and was killed"
    if status is RunStatus.KILLED and stopped:
        return (
            "the sandbox was stopped while the code ran (it exhausted the process or memory "
            "limit); its output files are lost"
        )
    if status is RunStatus.KILLED:
        if exit_code is not None and exit_code > 128:
            try:
                name = signal.Signals(exit_code - 128).name
            except ValueError:
                name = f"signal {exit_code - 128}"
            return f"the code was killed ({name})"
        return "the code was killed"
    if status is RunStatus.ERROR:
        return f"the code exited with status {exit_code}"
    return ""


ENGINE_RESTARTED = (
    "sandbox unavailable: the Docker engine restarted during the run (or stopped answering); "
    "the run was stopped and its outputs are lost. Try again when the engine is back"
)


def failure_message(exc: Exception, image: str, during_run: bool = False) -> str:
    """The message of a sandbox_error: what failed, and the fix where there is one.
    `during_run`: the sandbox had been started, so an engine gone now went away mid-run."""
    if isinstance(exc, EngineUnavailable) and during_run:
        log.warning("engine lost mid-run", error=str(exc)[:300])
        return ENGINE_RESTARTED
    if isinstance(exc, ImageMissing):
        return f"sandbox image {image!r} not found: build it with `{IMAGE_BUILD_HINT}`"
    if isinstance(exc, EngineUnavailable):
        return str(exc)
    if isinstance(exc, RunnerNotReady):
        return f"sandbox runner failed to start: {exc}"
    if isinstance(exc, HostPathError):
        return f"sandbox misconfigured: {exc}"
    reason = str(exc)
    if isinstance(exc, EngineError) and "bind source path does not exist" in reason:
        return (
            "sandbox misconfigured: the Docker host has no folder "
            f"{reason.rsplit(': ', 1)[-1]}; HOST_DATA_DIR must be the host path of DATA_DIR"
        )
    log.error("sandbox failure", error_type=type(exc).__name__, exc_info=exc)
    return f"sandbox failure: {reason[:300]}"
