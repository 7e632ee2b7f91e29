"""The chat records contract: conversations, model choices, usage and budgets behave the same in
memory, in the embedded SQLite file, in MongoDB through mongomock-motor, and in a real MongoDB
when MONGODB_TEST_URI is set."""

import os
import uuid

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.chat import MemoryChatRecords, UsageRecord
from app.chat.mongo import MongoChatRecords
from app.chat.sqlite import SqliteChatRecords
from app.database import EmbeddedDatabase


@pytest.fixture(params=["memory", "sqlite", "mongomock", "mongodb"])
async def records(request, tmp_path):
    if request.param == "memory":
        yield MemoryChatRecords()
        return
    if request.param == "sqlite":
        database = EmbeddedDatabase(tmp_path / "store.sqlite3")
        yield SqliteChatRecords(database)
        await database.close()
        return
    if request.param == "mongomock":
        store = MongoChatRecords(AsyncMongoMockClient(tz_aware=True)["codeinterp-test"])
        await store.ensure_indexes()
        yield store
        return
    uri = os.environ.get("MONGODB_TEST_URI")
    if not uri:
        pytest.skip("MONGODB_TEST_URI is not set: no real MongoDB to test against")
    name = f"codeinterp_test_{uuid.uuid4().hex[:8]}"
    store = MongoChatRecords.connect(uri, name)
    await store.ensure_indexes()
    yield store
    await store.db.client.drop_database(name)
    store.db.client.close()


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
    await records.record_usage(UsageRecord("u1", "gpt-4o", 200, 20, 0.25, cached_tokens=150))
    await records.record_usage(UsageRecord("u1", "mystery", 5, 1, None))
    await records.record_usage(UsageRecord("u2", "gpt-4o", 999, 99, 9.0))
    totals = {t.model: t for t in await records.usage_totals("u1")}
    assert (totals["gpt-4o"].requests, totals["gpt-4o"].prompt_tokens) == (2, 300)
    assert totals["gpt-4o"].cost == pytest.approx(0.75)
    assert totals["gpt-4o"].cached_tokens == 150
    assert totals["gpt-4o"].completion_tokens == 30
    assert totals["mystery"].cost is None
    await records.ping()


async def test_turns_keep_nested_messages_and_unicode(records):
    turn = [
        {"role": "user", "content": [{"type": "text", "text": "Grüße ✓"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "x"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "ok"}'},
    ]
    await records.save_turns("u1", "c1", [turn])
    await records.save_turns("u1", "c1", [turn, turn])  # replaces, never appends
    assert await records.load_turns("u1", "c1") == [turn, turn]


async def test_usage_totals_with_only_unknown_prices_stay_unknown(records):
    await records.record_usage(UsageRecord("u1", "local", 5, 1, None))
    await records.record_usage(UsageRecord("u1", "local", 5, 1, None))
    (total,) = await records.usage_totals("u1")
    assert total.cost is None and total.requests == 2 and total.prompt_tokens == 10
    assert await records.usage_totals("nobody") == []
