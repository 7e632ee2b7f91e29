"""Files to attach, grouped so that each message is one Discord accepts.

Discord refuses a message (HTTP 413) when its files together pass the request limit, not only
when one file is too large, and takes at most ten files per message. Grouping is pure; sending,
and what happens when a group is still refused, is app/bot/delivery.py's.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import discord

FILES_PER_MESSAGE = 10
# The multipart envelope and the message's JSON travel in the same request as the files.
REQUEST_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Attachment:
    filename: str
    size: int
    path: Path | None = None
    data: bytes | None = None
    file_id: str | None = None
    """The stored file's id, named when the file cannot be attached; None for text made here."""

    def to_file(self) -> discord.File:
        if self.path is not None:
            return discord.File(self.path, filename=self.filename)
        return discord.File(io.BytesIO(self.data or b""), filename=self.filename)


def group_attachments(
    attachments: Sequence[Attachment], request_limit: int, per_message: int = FILES_PER_MESSAGE
) -> list[list[Attachment]]:
    """Consecutive groups of at most `per_message` files whose sizes add up to at most the
    request limit (less the envelope); a file alone over that gets a group of its own."""
    budget = max(request_limit - REQUEST_OVERHEAD, 1)
    groups: list[list[Attachment]] = []
    current: list[Attachment] = []
    total = 0
    for attachment in attachments:
        if current and (len(current) >= per_message or total + attachment.size > budget):
            groups.append(current)
            current, total = [], 0
        current.append(attachment)
        total += attachment.size
    if current:
        groups.append(current)
    return groups


def unattached_note(failed: Sequence[Attachment]) -> str:
    """What replaces files Discord still refused."""
    lines = []
    for attachment in failed:
        if attachment.file_id:
            lines.append(
                f"-# {attachment.filename} could not be attached here; "
                f"it is stored as file {attachment.file_id} (see /files)."
            )
        else:
            lines.append(f"-# {attachment.filename} could not be attached here.")
    return "\n".join(lines)
