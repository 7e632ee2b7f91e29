"""Conversation, model and usage storage: MongoDB code through mongomock-motor, and in memory."""

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.chat import MemoryChatRecords, Turn, UsageRecord
from app.chat.mongo import MongoChatRecords


@pytest.fixture(params=["mongo", "memory"])
async def records(request):
    if request.param == "memory":
        return MemoryChatRecords()
    store = MongoChatRecords(AsyncMongoMockClient()["codeinterp-test"])
    await store.ensure_indexes()
    return store


def make_turn(turn_id: str, text: str = "hi") -> Turn:
    call = {
        "id": f"call-{turn_id}",
        "type": "function",
        "function": {"name": "x", "arguments": "{}"},
    }
    return Turn(
        id=turn_id,
        messages=[
            {"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "{}"},
            {"role": "assistant", "content": "hello"},
        ],
        runs=[call["id"]],
    )


async def test_turns_are_kept_per_user_and_channel(records):
    turn = make_turn("t1")
    await records.save_turns("u1", "c1", [turn])
    assert await records.load_turns("u1", "c1") == [turn]
    assert await records.load_turns("u1", "c2") == []
    assert await records.load_turns("u2", "c1") == []
    assert await records.clear("u1", "c1") is True
    assert await records.clear("u1", "c1") is False
    assert await records.load_turns("u1", "c1") == []


async def test_a_turn_is_found_by_its_id_in_its_own_conversation_only(records):
    first, second = make_turn("aaa", "one"), make_turn("bbb", "two")
    await records.save_turns("u1", "c1", [first, second])
    assert await records.find_turn("u1", "c1", "bbb") == second
    assert (await records.find_turn("u1", "c1", "aaa")).runs == ["call-aaa"]
    assert await records.find_turn("u1", "c1", "zzz") is None
    assert await records.find_turn("u2", "c1", "aaa") is None  # another user's conversation
    assert await records.find_turn("u1", "c2", "aaa") is None
    assert await records.find_turn("u1", "c1", "") is None
    found = await records.find_turn("u1", "c1", "aaa")
    found.messages.append({"role": "user", "content": "changed"})  # a copy, not the record
    assert await records.find_turn("u1", "c1", "aaa") == first


async def test_turns_saved_before_they_had_ids_still_load():
    store = MongoChatRecords(AsyncMongoMockClient()["codeinterp-legacy"])
    legacy = [{"role": "user", "content": "old"}, {"role": "assistant", "content": "reply"}]
    await store.conversations.insert_one({"user_id": "u1", "channel_id": "c1", "turns": [legacy]})
    assert await store.load_turns("u1", "c1") == [Turn(messages=legacy)]
    assert await store.find_turn("u1", "c1", "") is None
    await store.save_turns("u1", "c1", [*await store.load_turns("u1", "c1"), make_turn("new")])
    doc = await store.conversations.find_one({"user_id": "u1"})
    assert [t["id"] for t in doc["turns"]] == ["", "new"]


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
