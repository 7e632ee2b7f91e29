"""Building a ChatService for tests: the fake model server, the real file store with in-memory metadata, real runner."""

from __future__ import annotations

import openai

from app.chat import ChatRateLimit, ChatService, MemoryChatRecords
from tests.fakes.file_store import memory_store


def make_service(fake, runner, data_dir, *, records=None, store=None, **options) -> ChatService:
    client = openai.AsyncOpenAI(
        api_key="sk-test-secret-123", base_url=fake.base_url, max_retries=0, timeout=30
    )
    options.setdefault("default_model", "gpt-4o-mini")
    options.setdefault("allowed_models", ("gpt-4o-mini", "gpt-4o", "local-llama"))
    options.setdefault("vision_models", ("gpt-4o",))
    options.setdefault("rate_limit", ChatRateLimit(100))
    return ChatService(
        client,
        runner,
        store if store is not None else memory_store(data_dir),
        records if records is not None else MemoryChatRecords(),
        runs_dir=data_dir / "runs",
        **options,
    )
