"""/help: what the bot does, its limits as configured, and its commands. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    run_seconds: float
    file_mb: float
    files_per_user: int
    expiry_hours: float | None
    messages_per_minute: int | None
    auto_thread: bool
    runs_per_message: int = 10
    run_seconds_per_message: float = 600.0
    upload_mb_per_message: float = 100.0


def help_text(limits: Limits) -> str:
    if limits.expiry_hours is None:
        expiry = "are kept until you delete them"
    else:
        expiry = f"are kept for {limits.expiry_hours:g} hours"
    where = (
        "Mention me in a channel (I open a thread and answer there), reply to one of my "
        "messages, or DM me."
        if limits.auto_thread
        else "Mention me in a channel, reply to one of my messages, or DM me."
    )
    rate = (
        f" You can send {limits.messages_per_minute} messages a minute."
        if limits.messages_per_minute
        else ""
    )
    return "\n".join(
        [
            "**I answer questions by running Python for you** (pandas, numpy, matplotlib, "
            "scikit-learn and more) in a fresh, isolated sandbox without network access.",
            where + " Reply to any message to bring its text and files into the question.",
            "",
            "**Files**: attach data files (CSV, Excel, JSON, images, ...) and ask about them; "
            "plots and files the code writes come back as attachments and are stored for you.",
            "",
            "**Under each answer**: one line per code run, the last run's output, and buttons: "
            "Stop while it runs, Re-run (the same code with your current files), Code (see "
            "the code), Delete.",
            "",
            f"**Limits**: code runs up to {limits.run_seconds:g} s, at most "
            f"{limits.runs_per_message} runs and {limits.run_seconds_per_message:g} s of run time "
            f"per message; files up to {limits.file_mb:g} MB, "
            f"{limits.upload_mb_per_message:g} MB per message, {limits.files_per_user} per "
            f"person (the oldest goes); files {expiry}.{rate}",
            "",
            "**Commands** (the answers are visible only to you):",
            "`/files list` your files, `/files download`, `/files delete` (one, or `all`)",
            "`/reset` forget this conversation · `/model` show or choose the model · "
            "`/usage` your tokens and estimated cost · `/help` this message",
        ]
    )
