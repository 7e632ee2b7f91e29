"""Turning a ChatAnswer into Discord messages: text split under the limit, files attached.

Pure functions (no network), so the rules are tested directly: code blocks stay closed across
chunks, at most 10 files per message, files over the upload limit are named by file id instead,
long program output goes as a text file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.chat import ChatAnswer
from app.sizes import human_size

MESSAGE_LIMIT = 2000
FILES_PER_MESSAGE = 10
INLINE_OUTPUT_CHARS = 1500
FENCE_RESERVE = 40  # room for closing a code block and reopening it with its language tag


@dataclass(frozen=True)
class Attachment:
    filename: str
    path: Path | None = None
    data: bytes | None = None


@dataclass
class OutgoingMessage:
    content: str = ""
    attachments: list[Attachment] = field(default_factory=list)


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


def plan_reply(answer: ChatAnswer, upload_limit: int) -> list[OutgoingMessage]:
    if answer.error:
        return [OutgoingMessage(content=answer.error)]
    notes = list(answer.notices)
    attachments: list[Attachment] = []
    for index, run in enumerate(answer.runs, start=1):
        output = run.result.stdout
        if len(output) > INLINE_OUTPUT_CHARS:
            name = "output.txt" if len(answer.runs) == 1 else f"output-{index}.txt"
            attachments.append(Attachment(name, data=output.encode("utf-8")))
    for produced in answer.files:
        if produced.size > upload_limit:
            notes.append(
                f"{produced.name} ({human_size(produced.size)}) is too large to attach here; "
                f"it is stored as file {produced.file_id} (see /files)."
            )
        else:
            attachments.append(Attachment(produced.name, path=produced.path))
    text = answer.text or ("" if attachments else "(no answer)")
    if notes:
        text = (text + "\n\n" if text else "") + "\n".join(f"-# {note}" for note in notes)
    chunks = split_message(text)
    messages = [OutgoingMessage(content=chunk) for chunk in chunks]
    groups = [
        attachments[i : i + FILES_PER_MESSAGE]
        for i in range(0, len(attachments), FILES_PER_MESSAGE)
    ]
    if groups:
        messages[-1].attachments = groups[0]
        messages.extend(OutgoingMessage(attachments=group) for group in groups[1:])
    return messages
