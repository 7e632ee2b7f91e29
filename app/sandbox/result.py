"""The values a run takes and gives: RunRequest in, RunResult out.

Everything the user's code can cause is a RunResult, never an exception; infrastructure faults are
a RunResult with status `sandbox_error` and a message that names the fix.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from pathlib import Path

from app import user_ids
from app.sandbox.sessions import SESSION_RULE, is_session_id
from app.user_ids import is_user_id


class RunStatus(str, enum.Enum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    OOM = "oom"
    KILLED = "killed"
    SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True)
class InputFile:
    """A file the code can load: `filename` is its name inside the request's input_dir."""

    file_id: str
    name: str
    filename: str
    size: int
    type: str = ""
    category: str = ""
    """Type and category names of the host's type table (app/files/types.py), set by whoever
    builds the request (the chat converts stored files); the sandbox loader picks its reader by
    them and falls back to the extension when they are empty."""

    def manifest_entry(self) -> dict:
        return {
            "id": self.file_id,
            "name": self.name,
            "filename": self.filename,
            "size": self.size,
            "type": self.type,
            "category": self.category,
        }


@dataclass(frozen=True)
class RunRequest:
    code: str
    user_id: str
    output_dir: Path
    """Host folder (bot's view) that receives the collected output files; created if missing."""
    input_dir: Path | None = None
    """Host folder (bot's view, under DATA_DIR) mounted read-only as the code's input folder."""
    files: tuple[InputFile, ...] = ()
    timeout: float | None = None
    """Seconds for the exec step; never more than CODE_EXECUTION_TIMEOUT."""
    session_id: str = ""
    """The conversation the run belongs to, if any: with session state on (the sandbox side's
    SESSION_STATE), the run starts with the names the session's last run left and saves its own
    (app/sandbox/sessions.py); empty: a run of its own, nothing kept."""


@dataclass(frozen=True)
class OutputFile:
    name: str
    size: int
    path: Path
    file_id: str | None = None
    """Set once the file is stored for the user."""


@dataclass(frozen=True)
class SkippedOutput:
    name: str
    reason: str


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: RunStatus
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timeout_seconds: float = 0.0
    queue_seconds: float = 0.0
    setup_seconds: float = 0.0
    exec_seconds: float = 0.0
    collect_seconds: float = 0.0
    install_seconds: float = 0.0
    """Time spent installing (or waiting for) approved packages; outside the exec timer."""
    installed_packages: tuple[str, ...] = ()
    """`name==version` of the approved packages installed for this run."""
    files: tuple[OutputFile, ...] = ()
    skipped: tuple[SkippedOutput, ...] = ()
    message: str = ""
    """A short human explanation for any status but ok (what happened, what to change)."""
    state_notes: tuple[str, ...] = ()
    """What the session's state could not keep or restore ("not kept: con (sqlite3.Connection)"),
    for the model; empty without a session."""
    state_seconds: float = 0.0
    """Time spent restoring and saving the session's state; outside the exec timer."""

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.OK

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["files"] = [
            {"name": f.name, "size": f.size, "path": str(f.path), "file_id": f.file_id}
            for f in self.files
        ]
        data["skipped"] = [{"name": s.name, "reason": s.reason} for s in self.skipped]
        data["installed_packages"] = list(self.installed_packages)
        data["state_notes"] = list(self.state_notes)
        for key in (
            "state_seconds",
            "queue_seconds",
            "setup_seconds",
            "exec_seconds",
            "collect_seconds",
            "install_seconds",
        ):
            data[key] = round(data[key], 4)
        return data


def request_problem(request: RunRequest, max_code_bytes: int) -> str:
    """Why the runner refuses `request` ("" when it is fine)."""
    if not is_user_id(request.user_id):
        return user_ids.RULE
    if not request.code.strip():
        return "there is no code to run"
    size = len(request.code.encode("utf-8", errors="surrogatepass"))
    if size > max_code_bytes:
        return f"the code is {size} bytes, over the limit of {max_code_bytes} bytes"
    if request.session_id and not is_session_id(request.session_id):
        return SESSION_RULE
    if request.timeout is not None and request.timeout <= 0:
        return "the timeout must be a positive number of seconds"
    return ""
