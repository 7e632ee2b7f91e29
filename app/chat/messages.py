"""The sentences a user or the model reads about a turn: model failures, stopped runs, the files.

Never the provider's raw text: every failure a user can meet becomes a short friendly sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

import openai

from app.chat.values import ReplyContext
from app.files import StoredFile
from app.sandbox import RunResult, RunStatus


def model_error_message(exc: Exception) -> str:
    """The sentence a user sees for a failed model call: never the provider's raw text."""
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return "The model service refused the bot's credentials. Please tell the bot's admin."
    if isinstance(exc, openai.RateLimitError):
        return "The model service is rate limiting us right now. Please try again in a minute."
    if isinstance(exc, openai.NotFoundError):
        return "The selected model is not available. Pick another one with /model."
    if isinstance(exc, openai.APITimeoutError):
        return "The model service took too long to answer. Please try again."
    if isinstance(exc, openai.APIConnectionError):
        return "The model service cannot be reached right now. Please try again later."
    if isinstance(exc, openai.BadRequestError):
        return "The model service rejected this request. Try /reset to start a fresh conversation."
    return "The model service had an error. Please try again in a moment."


def run_notice(result: RunResult) -> str:
    """A friendly line for runs that did not finish normally (errors are the model's to explain)."""
    if result.status is RunStatus.TIMEOUT:
        return f"The code ran longer than the {result.timeout_seconds:g} s limit and was stopped."
    if result.status is RunStatus.OOM:
        return "The code ran out of memory and was stopped."
    if result.status is RunStatus.KILLED:
        return "The code was killed before it finished."
    if result.status is RunStatus.SANDBOX_ERROR:
        return "The code sandbox is unavailable right now. Please try again later."
    return ""


def describe_files(files: Sequence[StoredFile]) -> str:
    if not files:
        return "The user has no stored files."
    lines = ["The user's stored files (load them by id with load_file):"]
    for f in files:
        expiry = f.expires_at.strftime("%Y-%m-%d %H:%M UTC") if f.expires_at else "never"
        lines.append(f"- id {f.file_id}: {f.name} ({f.type}, {f.size} bytes, expires {expiry})")
    return "\n".join(lines)


REPLY_CONTEXT_CHARS = 4000  # of the replied-to message's text: a quote, not a document


def user_message_text(
    text: str, stored: Sequence[StoredFile], reply_to: ReplyContext | None = None
) -> str:
    """What the model reads as the user's message: the quoted message it replies to, the
    user's words, and the files stored with it."""
    parts = []
    if reply_to is not None:
        who = "you (the assistant)" if reply_to.by_bot else reply_to.author
        quoted = reply_to.text.strip()[:REPLY_CONTEXT_CHARS] or "(no text)"
        quote = "\n".join(f"> {line}" for line in quoted.splitlines())
        parts.append(f"[The user is replying to this message from {who}:]\n{quote}")
    if text.strip():
        parts.append(text.strip())
    if stored:
        listed = ", ".join(f"{f.name} (id {f.file_id})" for f in stored)
        parts.append(f"[Attached and stored: {listed}]")
    return "\n\n".join(parts)
