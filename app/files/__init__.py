"""User files: the type table, the store (disk + metadata repository) and the cleanup pass.

Nothing here imports discord; motor is imported only by app/files/mongo.py, and only when
MONGODB_URI is set.
"""

from app.config import Settings
from app.files.cleanup import CleanupReport, CleanupService
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
    "StorageUnavailable",
    "StoredFile",
    "create_file_store",
    "create_repository",
    "detect_type",
    "is_supported",
]


def create_repository(settings: Settings) -> FileRepository:
    """MongoDB when MONGODB_URI is set, else metadata in memory (repository.persistent False)."""
    if settings.mongodb_uri is None:
        return InMemoryFileRepository()
    uri = settings.mongodb_uri.get_secret_value()
    from app.files import mongo

    return mongo.connect(uri, settings.mongodb_database)


async def create_file_store(settings: Settings, repository: FileRepository | None = None,
                            **overrides) -> FileStore:
    """The store every entry point uses, its repository checked and indexed.

    Raises StorageUnavailable when MongoDB does not answer.
    """
    repository = repository or create_repository(settings)
    try:
        await repository.ensure_ready()
    except RepositoryUnavailable as exc:
        await repository.close()
        raise StorageUnavailable(str(exc)) from None
    return FileStore.from_settings(settings, repository, **overrides)
