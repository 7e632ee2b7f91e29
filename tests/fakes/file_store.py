"""The real FileStore with in-memory metadata, for chat and bot tests (no MongoDB needed).

Bytes are real files under DATA_DIR/users/<id>/, so the real sandbox reads them exactly as in
production; only the metadata repository is the in-memory one the store ships with.
"""

from __future__ import annotations

from pathlib import Path

from app.files import FileStore, InMemoryFileRepository


def memory_store(data_dir: Path, **options) -> FileStore:
    return FileStore(data_dir, InMemoryFileRepository(), **options)
