"""The values a chat turn takes and gives: uploads in, an answer with its runs and files out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from app.chat.records import UsageRecord
from app.files import StoredFile
from app.sandbox import RunResult


@dataclass(frozen=True)
class Upload:
    """A file that came with the user's message."""

    filename: str
    data: bytes
    refused: str = ""
    """Why the file was not even downloaded (e.g. over the size limit); then nothing is stored."""


@dataclass(frozen=True)
class DeliveredFile:
    """A file a run produced, stored for the user, ready to attach."""

    name: str
    path: Path
    size: int
    file_id: str


@dataclass(frozen=True)
class CodeRun:
    code: str
    result: RunResult
    files: tuple[DeliveredFile, ...] = ()


@dataclass(frozen=True)
class TurnFiles:
    """The user's files one turn may use (app/files/scopes.py): those of the conversation's
    scope, and any the user named by id in their message."""

    scope: str
    file_ids: frozenset[str] = frozenset()


@dataclass
class ChatAnswer:
    text: str = ""
    runs: list[CodeRun] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    """Short sentences for the user beside the answer: upload problems, stopped runs."""
    error: str = ""
    """Set when the turn failed; a friendly sentence that replaces the answer."""
    model: str = ""
    usage: list[UsageRecord] = field(default_factory=list)
    stored_uploads: list[StoredFile] = field(default_factory=list)

    @property
    def files(self) -> list[DeliveredFile]:
        return [f for run in self.runs for f in run.files]


class RunObserver(Protocol):
    """Progress of a code run, for a live status display."""

    def run_started(self, code: str) -> None: ...

    def run_queued(self, position: int) -> None: ...

    async def run_finished(self, result: RunResult) -> None: ...
