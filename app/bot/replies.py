"""Turning a turn into Discord text: pure functions (no network), so the rules are tested directly.

The answer reads top-down: one compact line per code run (status, time), the last run's short
output in a code block (about 10 lines / 1000 characters; the rest goes as a text file), the
model's text, then small notes. The same function renders the live message while the turn goes,
with a status line at the end. Text is split under Discord's 2000 characters with code blocks
closed and reopened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.bot.attachments import Attachment
from app.chat import ChatAnswer, CodeRun, run_notice
from app.sandbox import RunResult, RunStatus
from app.sizes import human_size

MESSAGE_LIMIT = 2000
FENCE_RESERVE = 40  # room for closing a code block and reopening it with its language tag
INLINE_LINES = 10
INLINE_CHARS = 1000
ERROR_LINE_CHARS = 120
THINKING = "-# Thinking…"


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters, split at line ends, code blocks closed and reopened."""
    chunks: list[str] = []
    lines: list[str] = []
    fence: str | None = None
    room = limit - FENCE_RESERVE

    def close_chunk() -> None:
        body = "\n".join(lines)
        if fence is not None:
            body += "\n```"
        if lines and lines != [fence]:
            chunks.append(body)
        lines.clear()
        if fence is not None:
            lines.append(fence)

    for line in text.split("\n"):
        pieces = [line[i : i + room] for i in range(0, len(line), room)] or [""]
        for piece in pieces:
            if lines and len("\n".join([*lines, piece])) + 4 > limit:
                close_chunk()
            lines.append(piece)
            stripped = piece.strip()
            if stripped.startswith("```"):
                fence = stripped[:20] if fence is None else None
    fence_open = fence
    fence = None
    if lines and fence_open is not None:
        lines.append("```")  # an unclosed block from the model is closed rather than left open
    close_chunk()
    return chunks or [""]


def in_block(text: str) -> str:
    """Text that cannot close the code block it is shown in."""
    return text.replace("```", "`\u200b``")


def shortened(text: str, *, tail: bool = False) -> tuple[str, bool]:
    """At most INLINE_LINES lines and INLINE_CHARS characters of `text` (its end when `tail`,
    where a traceback's last line is) and whether anything was left out."""
    lines = text.rstrip("\n").split("\n")
    cut = len(lines) > INLINE_LINES
    lines = lines[-INLINE_LINES:] if tail else lines[:INLINE_LINES]
    kept = "\n".join(lines)
    if len(kept) > INLINE_CHARS:
        kept = kept[-INLINE_CHARS:] if tail else kept[:INLINE_CHARS]
        cut = True
    return kept, cut


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1].replace("`", "'")[:ERROR_LINE_CHARS]


def run_line(run: CodeRun) -> str:
    """One compact line for a run: its number, how it ended, how long it took."""
    result = run.result
    took = seconds(result.exec_seconds)
    if result.status is RunStatus.OK:
        line = f"Run {run.number}: finished in {took}"
        if run.files:
            line += f" · {len(run.files)} file{'s' if len(run.files) > 1 else ''}"
    elif result.status is RunStatus.ERROR:
        error = last_error_line(result.stderr) or result.message[:ERROR_LINE_CHARS]
        line = f"Run {run.number}: error after {took}" + (f" · `{error}`" if error else "")
    elif result.status is RunStatus.TIMEOUT:
        line = f"Run {run.number}: stopped at the {result.timeout_seconds:g} s time limit"
    elif result.status is RunStatus.OOM:
        line = f"Run {run.number}: ran out of memory after {took} and was stopped"
    elif result.status is RunStatus.KILLED:
        line = f"Run {run.number}: killed after {took}"
    else:
        line = f"Run {run.number}: the sandbox is unavailable right now"
    return f"-# {line}"


def output_name(run: CodeRun, stream: str, single: bool) -> str:
    base = "output" if stream == "stdout" else "errors"
    return f"{base}.txt" if single else f"{base}-{run.number}.txt"


def run_output(run: CodeRun, single: bool) -> tuple[str, list[Attachment]]:
    """The run's short output as code blocks, and the full streams that did not fit as files.

    stdout is shown from its start; stderr only when the run failed, from its end."""
    result = run.result
    streams = [("stdout", result.stdout, False)]
    if result.status is not RunStatus.OK:
        streams.append(("stderr", result.stderr, True))
    blocks, files = [], []
    for stream, text, tail in streams:
        if not text.strip():
            continue
        shown, cut = shortened(text, tail=tail)
        blocks.append(f"```\n{in_block(shown)}\n```")
        if cut:
            name = output_name(run, stream, single)
            files.append(Attachment(name, size=len(text.encode()), data=text.encode("utf-8")))
            where = "ends" if tail else "continues"
            blocks.append(f"-# The {stream} {where} in {name}.")
    return "\n".join(blocks), files


def status_text(number: int, position: int, elapsed: float) -> str:
    if position > 0:
        return f"-# Waiting for a free sandbox (position {position}, {elapsed:.0f} s)"
    return f"-# Running code (run {number}, {elapsed:.0f} s)"


def compose(
    runs: Sequence[CodeRun],
    text: str,
    notes: Sequence[str] = (),
    status: str | None = None,
) -> tuple[str, list[Attachment]]:
    """The body of an answer (live or final) and the output files it refers to."""
    sections = []
    files: list[Attachment] = []
    if runs:
        sections.append("\n".join(run_line(run) for run in runs))
        output, files = run_output(runs[-1], single=len(runs) == 1)
        if output:
            sections.append(output)
    if text.strip():
        sections.append(text.strip())
    if notes:
        sections.append("\n".join(f"-# {note}" for note in notes))
    if status:
        sections.append(status)
    return "\n\n".join(sections), files


def trimmed_note(count: int) -> str:
    left = (
        "1 earlier turn of this conversation was"
        if count == 1
        else (f"{count} earlier turns of this conversation were")
    )
    return f"{left} left out to fit the model's context."


@dataclass
class AnswerPlan:
    text: str
    attachments: list[Attachment]


def plan_answer(answer: ChatAnswer, upload_limit: int) -> AnswerPlan:
    """The final text and files of an answer. Files over the upload limit are named by their
    file id in the text instead of attached (they stay in /files)."""
    shown_elsewhere = {run_notice(run.result) for run in answer.runs}  # the run lines say it
    notes = [n for n in answer.notices if n not in shown_elsewhere]
    if answer.trimmed_turns:
        notes.append(trimmed_note(answer.trimmed_turns))
    body, outputs = compose(answer.runs, answer.text, ())
    produced = [
        Attachment(f.name, size=f.size, path=f.path, file_id=f.file_id) for f in answer.files
    ]
    attachments = []
    for attachment in outputs + produced:
        if attachment.size <= upload_limit:
            attachments.append(attachment)
        elif attachment.file_id:
            notes.append(
                f"{attachment.filename} ({human_size(attachment.size)}) is too large to attach "
                f"here; it is stored as file {attachment.file_id} (see /files)."
            )
        else:
            notes.append(f"{attachment.filename} is too large to attach here.")
    parts = [body] if body else []
    if notes:
        parts.append("\n".join(f"-# {note}" for note in notes))
    if answer.error:
        parts.append(answer.error)
    return AnswerPlan(text="\n\n".join(parts) or "(no answer)", attachments=attachments)


CODE_FILES = 10  # one ephemeral reply takes ten files


def code_message(codes: Sequence[tuple[int, str]]) -> tuple[str, list[Attachment]]:
    """The Code button's private reply: the runs' code in blocks when it fits one message,
    else as run-N.py files (one runs.py when there are more than ten runs)."""
    blocks = [f"Run {n}:\n```python\n{in_block(code.rstrip())}\n```" for n, code in codes]
    text = "\n".join(blocks)
    if len(text) <= MESSAGE_LIMIT:
        return text, []
    if len(codes) <= CODE_FILES:
        files = [
            Attachment(f"run-{n}.py", size=len(code.encode()), data=code.encode("utf-8"))
            for n, code in codes
        ]
        names = ", ".join(f.filename for f in files)
        return f"The code is attached: {names}.", files
    joined = "\n\n".join(f"# --- run {n} ---\n{code.rstrip()}" for n, code in codes)
    data = joined.encode("utf-8")
    every = Attachment("runs.py", len(data), data=data)
    return "The code of every run is attached as runs.py.", [every]


def outcome_of(result: RunResult) -> str:
    """A few words for a run's status (the Re-run menu's labels)."""
    if result.status is RunStatus.OK:
        return f"finished, {seconds(result.exec_seconds)}"
    return f"{result.status.value.replace('_', ' ')}, {seconds(result.exec_seconds)}"
