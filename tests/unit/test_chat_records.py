"""Conversation, model and usage storage: MongoDB code through mongomock-motor, and in memory."""

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.chat import MemoryChatRecords, UsageRecord
from app.chat.mongo import MongoChatRecords


@pytest.fixture(params=["mongo", "memory"])
async def records(request):
    if request.param == "memory":
        return MemoryChatRecords()
    store = MongoChatRecords(AsyncMongoMockClient()["codeinterp-test"])
    await store.ensure_indexes()
    return store


async def test_turns_are_kept_per_user_and_channel(records):
    turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    await records.save_turns("u1", "c1", [turn])
    assert await records.load_turns("u1", "c1") == [turn]
    assert await records.load_turns("u1", "c2") == []
    assert await records.load_turns("u2", "c1") == []
    assert await records.clear("u1", "c1") is True
    assert await records.clear("u1", "c1") is False
    assert await records.load_turns("u1", "c1") == []


async def test_model_choice_and_usage_totals(records):
    assert await records.get_model("u1") is None
    await records.set_model("u1", "gpt-4o")
    await records.set_model("u1", "gpt-4o-mini")
    assert await records.get_model("u1") == "gpt-4o-mini"
    await records.record_usage(UsageRecord("u1", "gpt-4o", 100, 10, 0.5))
    await records.record_usage(UsageRecord("u1", "gpt-4o", 200, 20, 0.25))
    await records.record_usage(UsageRecord("u1", "mystery", 5, 1, None))
    await records.record_usage(UsageRecord("u2", "gpt-4o", 999, 99, 9.0))
    totals = {t.model: t for t in await records.usage_totals("u1")}
    assert (totals["gpt-4o"].requests, totals["gpt-4o"].prompt_tokens) == (2, 300)
    assert totals["gpt-4o"].cost == pytest.approx(0.75)
    assert totals["mystery"].cost is None
    await records.ping()
