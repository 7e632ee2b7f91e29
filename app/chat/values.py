"""The values a chat turn takes and gives: uploads in, an answer with its runs and files out, and
the events a live display observes while the turn goes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from app.chat.records import UsageRecord
from app.files import StoredFile
from app.sandbox import RunResult


def new_turn_id() -> str:
    """A turn's id: short enough for a Discord custom id, unique in practice."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Upload:
    """A file that came with the user's message (or with the message it replies to)."""

    filename: str
    data: bytes
    refused: str = ""
    """Why the file was not even downloaded (e.g. over the size limit); then nothing is stored."""
    from_reply: bool = False
    """Attached to the message being replied to: an identical stored file is reused."""


@dataclass(frozen=True)
class ReplyContext:
    """The message the user replied to: its text and who wrote it (its files come as uploads)."""

    author: str
    text: str
    by_bot: bool = False


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
    number: int = 1
    """The run's place in its turn, from 1 (what Re-run and Code name)."""
    notice: str = ""
    """What the store or the disk failed at for this run (its inputs or outputs), for the user."""


@dataclass(frozen=True)
class TurnFiles:
    """The user's files one turn may use (app/files/scopes.py): those of the conversation's
    scope, and any the user named by id in their message; and the session its runs keep their
    state in (app/chat/runs.py, session_name)."""

    scope: str
    file_ids: frozenset[str] = frozenset()
    session: str = ""


@dataclass
class ChatAnswer:
    text: str = ""
    runs: list[CodeRun] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    """Short sentences for the user beside the answer: upload problems, stopped runs."""
    error: str = ""
    """Set when the turn failed; a friendly sentence shown instead of (or after) the answer."""
    model: str = ""
    usage: list[UsageRecord] = field(default_factory=list)
    stored_uploads: list[StoredFile] = field(default_factory=list)
    turn_id: str = ""
    trimmed_turns: int = 0
    """Older turns of the conversation left out of this request to fit the model's budget."""

    @property
    def files(self) -> list[DeliveredFile]:
        return [f for run in self.runs for f in run.files]


class TurnObserver(Protocol):
    """What a live display hears while a turn (or a re-run) goes; every method is cheap."""

    def model_started(self) -> None:
        """A model request begins (the first, or one after code ran)."""

    def text_delta(self, text: str) -> None:
        """A piece of the model's answer, as it streams."""

    def run_started(self, number: int, code: str) -> None: ...

    def run_queued(self, position: int) -> None: ...

    async def run_finished(self, run: CodeRun) -> None:
        """The run is over and its files are stored."""


class TurnEvents:
    """A TurnObserver that ignores everything: displays override what they show."""

    def model_started(self) -> None:
        return None

    def text_delta(self, text: str) -> None:
        return None

    def run_started(self, number: int, code: str) -> None:
        return None

    def run_queued(self, position: int) -> None:
        return None

    async def run_finished(self, run: CodeRun) -> None:
        return None
