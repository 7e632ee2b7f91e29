"""User files: the type table, the store (disk + metadata repository) and the cleanup pass.

Nothing here imports discord or the sandbox; motor is imported only by app/files/mongo.py, and only
when MONGODB_URI is set; without it app/files/sqlite.py keeps the metadata in the embedded
database (app/wiring.py builds the store and its repository).
"""

from app.files import scopes
from app.files.cleanup import CleanupReport, CleanupService, SandboxLeftovers
from app.files.repository import (
    FileRepository,
    InMemoryFileRepository,
    RepositoryUnavailable,
    StoredFile,
)
from app.files.store import (
    FileEmpty,
    FileStore,
    FileStoreError,
    FileTooLarge,
    StorageUnavailable,
)
from app.files.types import FileType, detect_type, is_supported

__all__ = [
    "CleanupReport",
    "CleanupService",
    "FileEmpty",
    "FileRepository",
    "FileStore",
    "FileStoreError",
    "FileTooLarge",
    "FileType",
    "InMemoryFileRepository",
    "RepositoryUnavailable",
    "SandboxLeftovers",
    "StorageUnavailable",
    "StoredFile",
    "detect_type",
    "is_supported",
    "scopes",
]
