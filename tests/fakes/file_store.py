"""An in-memory stand-in for app/files FileStore (the contract in issue 3), for chat and bot tests.

Metadata lives in a dict; the bytes are real files under DATA_DIR/users/<id>/, so the real sandbox
reads them through RunRequest(input_dir=..., files=...), exactly as with the real store.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.filenames import safe_filename
from app.sandbox import InputFile, RunResult

IMAGE_TYPES = {"png", "jpg", "jpeg", "gif", "webp"}
SUPPORTED = {"csv", "txt", "json", "py", "xlsx", "parquet", *IMAGE_TYPES}


class FakeFileStoreError(Exception):
    pass


class FakeFileTooLarge(FakeFileStoreError):
    pass


def fake_is_supported(filename: str) -> bool:
    return Path(filename).suffix.lower().lstrip(".") in SUPPORTED


@dataclass(frozen=True)
class FakeStoredFile:
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


class FakeFileStore:
    def __init__(self, data_dir: Path, max_bytes: int = 1024 * 1024) -> None:
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes
        self.files: dict[tuple[str, str], FakeStoredFile] = {}

    async def save(self, user_id, filename, data, source="upload") -> FakeStoredFile:
        data = bytes(data)
        if len(data) > self.max_bytes:
            raise FakeFileTooLarge(
                f"{safe_filename(filename)} is {len(data)} bytes, "
                f"over the {self.max_bytes} byte limit."
            )
        file_id = uuid.uuid4().hex[:10]
        name = safe_filename(filename)
        ext = Path(name).suffix.lower()
        relative = f"users/{user_id}/{file_id}{ext}"
        target = self.data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        kind = ext.lstrip(".")
        now = datetime.now(UTC)
        stored = FakeStoredFile(
            file_id=file_id, user_id=str(user_id), name=name, type=kind,
            category="image" if kind in IMAGE_TYPES else "tabular" if kind == "csv" else "text",
            size=len(data), sha256=hashlib.sha256(data).hexdigest(), path=relative,
            source=source, uploaded_at=now, expires_at=now + timedelta(days=2),
        )
        self.files[(str(user_id), file_id)] = stored
        return stored

    async def list(self, user_id):
        mine = [f for (owner, _), f in self.files.items() if owner == str(user_id)]
        return sorted(mine, key=lambda f: f.uploaded_at, reverse=True)

    async def get(self, user_id, file_id):
        return self.files.get((str(user_id), file_id))

    async def delete(self, user_id, file_id) -> bool:
        stored = self.files.pop((str(user_id), file_id), None)
        if stored is None:
            return False
        self.absolute_path(stored).unlink(missing_ok=True)
        return True

    async def delete_all(self, user_id) -> int:
        ids = [fid for (owner, fid) in self.files if owner == str(user_id)]
        for file_id in ids:
            await self.delete(user_id, file_id)
        return len(ids)

    def absolute_path(self, stored) -> Path:
        return self.data_dir / stored.path

    def user_dir(self, user_id) -> Path:
        return self.data_dir / "users" / str(user_id)

    async def run_inputs(self, user_id):
        folder = self.user_dir(user_id)
        folder.mkdir(parents=True, exist_ok=True)
        files = tuple(
            InputFile(file_id=f.file_id, name=f.name, filename=Path(f.path).name, size=f.size,
                      type=f.type)
            for f in await self.list(user_id)
        )
        return folder, files

    async def store_outputs(self, user_id, result: RunResult) -> RunResult:
        produced = []
        for output in result.files:
            stored = await self.save(user_id, output.name, Path(output.path).read_bytes(),
                                     source="generated")
            Path(output.path).unlink(missing_ok=True)
            produced.append(replace(output, file_id=stored.file_id,
                                    path=self.absolute_path(stored)))
        return replace(result, files=tuple(produced))
