"""Building the chat's dependencies from settings: the one place the bot and `chat` share."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from app.chat.ports import SupportedCheck, UserFileStore
from app.chat.records import ChatRecords, MemoryChatRecords
from app.chat.service import ChatRateLimit, ChatService
from app.config import Settings
from app.sandbox import SandboxRunner


class WiringError(RuntimeError):
    """A dependency cannot be built; str() is one readable line."""


@dataclass(frozen=True)
class FileStoreParts:
    store: UserFileStore
    is_supported: SupportedCheck | None
    errors: tuple[type[Exception], ...]


def open_records(settings: Settings) -> ChatRecords:
    if settings.mongodb_uri is None:
        return MemoryChatRecords()
    from app.chat.mongo import MongoChatRecords  # motor only when MongoDB is configured

    return MongoChatRecords.connect(
        settings.mongodb_uri.get_secret_value(), settings.mongodb_database
    )


def open_file_store(settings: Settings) -> FileStoreParts:
    """The real file store (app/files, issue 3)."""
    try:
        from app.files import store as file_store
        from app.files import types as file_types
    except ImportError:
        raise WiringError("the file store (app/files) is not part of this build") from None
    return FileStoreParts(
        store=file_store.FileStore.from_settings(settings),
        is_supported=file_types.is_supported,
        errors=(file_store.FileStoreError,),
    )


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
