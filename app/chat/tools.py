"""The tool the model is offered, and the JSON it sees for each run (nothing hidden)."""

from __future__ import annotations

import json
from typing import Any

from app.sandbox import RunResult, RunStatus

TOOL_NAME = "execute_python_code"
# Each stream as the model reads it: head and tail (a traceback ends the stream), cut flagged.
MODEL_STREAM_CHARS = 20_000
SANDBOX_UNAVAILABLE = "the sandbox is unavailable right now; try again later"
PACKAGES = (
    "numpy, pandas, scipy, matplotlib, seaborn, scikit-learn, statsmodels, pyarrow, openpyxl, "
    "xlrd, odfpy, tabulate, sympy, networkx, pillow, pyyaml, lxml, h5py, tables, pyreadstat, "
    "soundfile, joblib"
)


def tool_definitions(max_timeout: float) -> list[Any]:
    description = (
        "Run Python 3.11 code in a fresh, isolated sandbox and get back its status, stdout, "
        "stderr, produced files and timing. Each call starts from scratch: no variables, imports "
        "or files survive between calls. The user's files are read-only: load one with "
        "`load_file('<file id or name>')` (CSV/TSV/JSON Lines -> pandas DataFrame, JSON -> "
        "DataFrame or parsed object, text -> str, others -> bytes); `list_files()` lists them and "
        "`get_file_path(id)` gives a path. The working directory is the output folder: every "
        "file written there (e.g. `plt.savefig('plot.png')`, `df.to_csv('out.csv')`) is sent to "
        "the user as an attachment. There is no network access, so nothing can be downloaded "
        f"or installed. Preinstalled: {PACKAGES}. Print results you need to see. "
        f"The code is stopped after {max_timeout:g} seconds (or the timeout you pass, if smaller)."
    )
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
        "exec_seconds": round(result.exec_seconds, 3),
        "timeout_seconds": result.timeout_seconds,
    }
    return json.dumps(payload, ensure_ascii=False)


def invalid_call(reason: str) -> str:
    return json.dumps({"status": "invalid_call", "message": reason})


def refused(reason: str) -> str:
    """The model's view of a call that was not run (a limit of the user's), so it can answer."""
    return json.dumps({"status": "refused", "message": f"not run: {reason}"})
