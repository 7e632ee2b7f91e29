"""The tool the model is offered, and the JSON it sees for each run (nothing hidden)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import structlog

from app.sandbox import RunResult, RunStatus, SandboxService
from app.sandbox.environment import SandboxEnvironment
from app.sizes import human_size

log = structlog.get_logger(__name__)
TOOL_NAME = "execute_python_code"
# Each stream as the model reads it: head and tail (a traceback ends the stream), cut flagged.
MODEL_STREAM_CHARS = 20_000
SANDBOX_UNAVAILABLE = "the sandbox is unavailable right now; try again later"
SYSTEM_PROMPT = (
    "You are a data analysis assistant in a chat. You can run Python code with the "
    f"`{TOOL_NAME}` tool; use it for any calculation, data work or chart instead of guessing. "
    "If the code fails, read the error, fix the code and run it again. Files the code writes to "
    "its working directory are attached to your answer automatically: mention them by name, do "
    "not paste their contents or links. Keep answers short; the chat shows Markdown."
)


def system_prompt(environment: SandboxEnvironment) -> str:
    if not environment.keeps_state:
        return SYSTEM_PROMPT
    return (
        f"{SYSTEM_PROMPT} Your runs in this conversation share their variables like notebook "
        "cells: build on what earlier runs defined instead of loading it again."
    )


def describe_environment(environment: SandboxEnvironment, max_timeout: float) -> str:
    """The tool's description: what the code really finds, from the sandbox side's own view."""
    if environment.keeps_state:
        state = (
            "Calls in this conversation share their top-level names like notebook cells: "
            "variables, DataFrames, functions, classes and imports defined by earlier calls (also "
            "by one that failed) are still there, though each call runs in a fresh container. "
            "Open files, connections, generators and locks are not kept; the result's "
            "`state_notes` name what was not kept or restored. State is limited to "
            f"{human_size(environment.state_max_bytes)}."
        )
    else:
        state = "Each call starts from scratch: no variables or imports survive between calls."
    if environment.preinstalled:
        packages = f"Preinstalled (with their dependencies): {', '.join(environment.preinstalled)}."
    else:
        packages = "The list of preinstalled packages is not available right now."
    if environment.approved:
        packages += (
            " These approved packages are not preinstalled but are installed automatically when "
            "the code imports them (the first import takes a few seconds, outside the time "
            f"limit): {', '.join(environment.approved)}. Nothing else can be installed."
        )
    else:
        packages += " Nothing else can be installed (no pip, no network)."
    outputs = memory = ""
    if environment.max_output_files:
        outputs = f" (at most {environment.max_output_files} files"
        outputs += f", {human_size(environment.max_output_bytes)} in all)"
    if environment.memory_bytes:
        memory = f", with {human_size(environment.memory_bytes)} of memory"
    return (
        "Run Python 3.11 code in an isolated sandbox and get back its status, stdout, stderr, "
        f"produced files and timing. {state} As in a notebook, the value of a trailing "
        "expression is shown in stdout (pandas objects truncated as pandas prints them), "
        "`plt.show()` and every figure still open at the end are sent as `figure-N.png`, and "
        "`display(obj)` shows a value or sends a figure or image. The user's files are "
        "read-only: load one with `load_file('<file id or name>')` (CSV/TSV/Excel/Parquet/JSON "
        "Lines -> pandas DataFrame, JSON -> DataFrame or parsed object, text -> str, images -> "
        "PIL image, SQLite -> read-only sqlite3 connection, others -> bytes); `list_files()` "
        "lists them and `get_file_path(id)` gives a path. The working directory is the output "
        f"folder (`OUTPUT_DIR`, {environment.output_dir}): every file written there (e.g. "
        f"`df.to_csv('out.csv')`) is sent to the user as an attachment{outputs}. There is no "
        f"network access. {packages} "
        f"The code is stopped after {max_timeout:g} seconds (or the timeout you pass, if "
        f"smaller){memory}."
    )


class ToolEnvironment:
    """The sandbox side's environment, asked once and kept; asked again (at most every
    RETRY_SECONDS) while the package list could not be read."""

    RETRY_SECONDS = 60.0

    def __init__(self, sandbox: SandboxService) -> None:
        self.sandbox = sandbox
        self._known: SandboxEnvironment | None = None
        self._asked_at = -math.inf

    async def get(self) -> SandboxEnvironment:
        known = self._known
        if known is not None and (known.preinstalled or self._recent()):
            return known
        self._asked_at = time.monotonic()
        try:
            self._known = await self.sandbox.describe_environment()
        except Exception as exc:  # the sandbox is away: describe what is known, ask later
            log.warning("sandbox environment not described", error=str(exc)[:200])
            self._known = known or SandboxEnvironment()
        return self._known

    def _recent(self) -> bool:
        return time.monotonic() - self._asked_at < self.RETRY_SECONDS


def tool_definitions(
    max_timeout: float, limits: str = "", environment: SandboxEnvironment | None = None
) -> list[Any]:
    environment = environment or SandboxEnvironment()
    description = describe_environment(environment, max_timeout) + (f" {limits}" if limits else "")
    return [
        {
            "type": "function",
            "function": {
                "name": TOOL_NAME,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "description": "The Python code to run."},
                        "timeout": {
                            "type": "number",
                            "description": f"Seconds the code may run, at most {max_timeout:g}.",
                        },
                    },
                    "required": ["code"],
                },
            },
        }
    ]


def parse_arguments(raw: str | None) -> tuple[str, float | None]:
    """(code, timeout) from the model's arguments; ValueError with a message the model can use."""
    try:
        args = json.loads(raw or "{}")
    except ValueError:
        raise ValueError("the arguments are not valid JSON") from None
    if not isinstance(args, dict):
        raise ValueError("the arguments must be a JSON object")
    code = args.get("code")
    if not isinstance(code, str) or not code.strip():
        raise ValueError("`code` must be a non-empty string")
    timeout = args.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ValueError("`timeout` must be a positive number of seconds")
    return code, float(timeout) if timeout is not None else None


def head_and_tail(text: str, limit: int = MODEL_STREAM_CHARS) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}", True


def tool_result(result: RunResult) -> str:
    """What the model reads after a run: the whole truth, minus infrastructure internals."""
    message = SANDBOX_UNAVAILABLE if result.status is RunStatus.SANDBOX_ERROR else result.message
    stdout, stdout_cut = head_and_tail(result.stdout)
    stderr, stderr_cut = head_and_tail(result.stderr)
    payload = {
        "status": result.status.value,
        "exit_code": result.exit_code,
        "message": message,
        "stdout": stdout,
        "stdout_truncated": result.stdout_truncated or stdout_cut,
        "stderr": stderr,
        "stderr_truncated": result.stderr_truncated or stderr_cut,
        "files": [{"name": f.name, "size": f.size, "file_id": f.file_id} for f in result.files],
        "skipped_files": [{"name": s.name, "reason": s.reason} for s in result.skipped],
        "state_notes": list(result.state_notes),
        "exec_seconds": round(result.exec_seconds, 3),
        "timeout_seconds": result.timeout_seconds,
    }
    return json.dumps(payload, ensure_ascii=False)


def invalid_call(reason: str) -> str:
    return json.dumps({"status": "invalid_call", "message": reason})


def refused(reason: str) -> str:
    """The model's view of a call that was not run (a limit of the user's), so it can answer."""
    return json.dumps({"status": "refused", "message": f"not run: {reason}"})


def over_limit(reason: str) -> str:
    """The result of a call past the turn's limits: nothing ran."""
    return json.dumps({"status": "over_limit", "message": reason})
