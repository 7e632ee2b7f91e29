"""What the chat needs from the file store (issue 3, app/files), as a Protocol.

The shapes match the FileStore contract exactly, so the real `app.files.store.FileStore` drops in;
the chat never imports app/files itself. Errors: the store raises exceptions whose `str()` is a
short user-facing sentence; the chat is told which exception types those are (`file_errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from app.sandbox import InputFile, RunResult


class StoredFileView(Protocol):
    file_id: str
    user_id: str
    name: str
    type: str
    category: str
    size: int
    sha256: str
    path: str
    source: str
    uploaded_at: datetime
    expires_at: datetime | None


@runtime_checkable
class UserFileStore(Protocol):
    async def save(
        self, user_id: str, filename: str, data, source: str = "upload"
    ) -> StoredFileView: ...

    async def list(self, user_id: str) -> list[StoredFileView]: ...

    async def get(self, user_id: str, file_id: str) -> StoredFileView | None: ...

    async def delete(self, user_id: str, file_id: str) -> bool: ...

    async def delete_all(self, user_id: str) -> int: ...

    def absolute_path(self, stored: StoredFileView) -> Path: ...

    def user_dir(self, user_id: str) -> Path: ...

    async def run_inputs(self, user_id: str) -> tuple[Path, tuple[InputFile, ...]]: ...

    async def store_outputs(self, user_id: str, result: RunResult) -> RunResult: ...


SupportedCheck = Callable[[str], bool]
"""`app.files.types.is_supported`: whether a file name has a type the store accepts."""
