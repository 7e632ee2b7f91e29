"""Building the chat's dependencies from settings: the one place the bot and `chat` share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openai

from app.chat.service import SupportedCheck
from app.files import FileStore
from app.chat.records import ChatRecords, MemoryChatRecords
from app.chat.service import ChatRateLimit, ChatService
from app.config import Settings
from app.files import (
    FileStoreError,
    StorageUnavailable,
    create_file_store,
    create_repository,
    is_supported,
)
from app.sandbox import SandboxRunner


class WiringError(RuntimeError):
    """A dependency cannot be built; str() is one readable line."""


@dataclass(frozen=True)
class FileStoreParts:
    store: FileStore
    is_supported: SupportedCheck | None
    errors: tuple[type[Exception], ...]


def open_records(settings: Settings) -> ChatRecords:
    if settings.mongodb_uri is None:
        return MemoryChatRecords()
    from app.chat.mongo import MongoChatRecords  # motor only when MongoDB is configured

    return MongoChatRecords.connect(
        settings.mongodb_uri.get_secret_value(), settings.mongodb_database
    )


async def open_file_store(settings: Settings, scratch_dir: Path | None = None) -> FileStoreParts:
    """The user file store (app/files), its repository checked and indexed.

    Without MongoDB the metadata lives in memory; then `scratch_dir`, when given, holds the files
    too, so a terminal session leaves nothing behind that no metadata describes.
    """
    repository = create_repository(settings)
    overrides = {} if repository.persistent or scratch_dir is None else {"data_dir": scratch_dir}
    try:
        store = await create_file_store(settings, repository, **overrides)
    except StorageUnavailable as exc:
        raise WiringError(str(exc)) from None
    return FileStoreParts(store=store, is_supported=is_supported, errors=(FileStoreError,))


def model_client(settings: Settings) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value() or "unset",
        base_url=settings.openai_base_url or None,
        max_retries=settings.openai_max_retries,
        timeout=120.0,
    )


def build_chat_service(
    settings: Settings,
    runner: SandboxRunner,
    files: FileStoreParts,
    records: ChatRecords,
    client: openai.AsyncOpenAI | None = None,
) -> ChatService:
    return ChatService(
        client or model_client(settings),
        runner,
        files.store,
        records,
        data_dir=settings.data_dir,
        default_model=settings.openai_model,
        allowed_models=settings.allowed_models,
        vision_models=settings.vision_model_prefixes,
        max_tool_rounds=settings.chat_max_tool_rounds,
        history_tokens=settings.chat_history_tokens,
        rate_limit=ChatRateLimit(settings.chat_rate_limit),
        is_supported=files.is_supported,
        file_errors=files.errors,
    )
