"""The job a run hands the in-container runner (one JSON line), and what its state phases mean.

{"code", "files": [manifest entries], "paths": [package folders], "approved_packages": {...},
 "state": {"folder", "restore": path or null, "max_bytes", "seconds"}}   (with a session)
"""

from __future__ import annotations

import json
from typing import Any

from app.sandbox.execution import ExecOutcome
from app.sandbox.policy import SandboxPolicy
from app.sandbox.result import RunRequest
from app.sandbox.sessions import SessionRun


def job_payload(
    policy: SandboxPolicy,
    request: RunRequest,
    paths: list[str],
    approved: dict[str, str],
    session: SessionRun | None,
) -> bytes:
    job: dict[str, Any] = {
        "code": request.code,
        "files": [f.manifest_entry() for f in request.files],
        "paths": paths,
        "approved_packages": approved,
    }
    if session is not None:
        restore = session.restore_from() is not None
        job["state"] = {
            "folder": policy.state_mount,
            "restore": policy.state_input_path if restore else None,
            "max_bytes": policy.state_max_bytes,
            "seconds": policy.state_seconds,
        }
    return json.dumps(job).encode() + b"\n"


def state_problem(outcome: ExecOutcome, state_seconds: float) -> str:
    """Why what the run sent must not become the session's state ("" when it may)."""
    if outcome.timed_out:
        return "the run timed out"
    if outcome.save_overrun:
        return f"saving took longer than {state_seconds:g} seconds"
    return ""
