"""The chat records contract: conversations, model choices, usage and budgets behave the same in
memory, in the embedded SQLite file, in MongoDB through mongomock-motor, and in a real MongoDB
when MONGODB_TEST_URI is set."""

import os
import uuid

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.chat import MemoryChatRecords, Turn, UsageRecord
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
    turn = Turn(
        id="t1",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Grüße ✓"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "x"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "ok"}'},
        ],
        runs=["c1"],
    )
    await records.save_turns("u1", "c1", [turn])
    await records.save_turns("u1", "c1", [turn, turn])  # replaces, never appends
    assert await records.load_turns("u1", "c1") == [turn, turn]


async def test_usage_totals_with_only_unknown_prices_stay_unknown(records):
    await records.record_usage(UsageRecord("u1", "local", 5, 1, None))
    await records.record_usage(UsageRecord("u1", "local", 5, 1, None))
    (total,) = await records.usage_totals("u1")
    assert total.cost is None and total.requests == 2 and total.prompt_tokens == 10
    assert await records.usage_totals("nobody") == []


async def test_daily_amounts_add_up_per_user_and_day(records):
    from app.chat.records import DailyAmounts

    assert await records.daily_usage("u1", "2026-01-02") == DailyAmounts()
    await records.add_daily("u1", "2026-01-02", DailyAmounts(100, 0.5, 3.0), None)
    total = await records.add_daily("u1", "2026-01-02", DailyAmounts(50, 0.25, -1.0), None)
    assert total == DailyAmounts(150, 0.75, 2.0)
    assert await records.daily_usage("u1", "2026-01-02") == total
    assert await records.daily_usage("u1", "2026-01-03") == DailyAmounts()
    assert await records.daily_usage("u2", "2026-01-02") == DailyAmounts()


async def test_a_daily_add_over_a_limit_adds_nothing_and_the_edge_fits(records):
    from app.chat.records import DailyAmounts, DailyLimits

    limits = DailyLimits(tokens=1000, seconds=60.0)
    day = "2026-01-02"
    assert await records.add_daily("u1", day, DailyAmounts(tokens=1001), limits) is None
    assert await records.add_daily("u1", day, DailyAmounts(tokens=600), limits) is not None
    assert await records.add_daily("u1", day, DailyAmounts(tokens=401), limits) is None
    exact = await records.add_daily("u1", day, DailyAmounts(tokens=400), limits)
    assert exact.tokens == 1000  # exactly at the limit is within it
    # seconds have their own limit; tokens already at the limit do not block them
    assert (await records.add_daily("u1", day, DailyAmounts(seconds=60), limits)).seconds == 60
    assert await records.add_daily("u1", day, DailyAmounts(seconds=0.5), limits) is None
    # settling (no limits) may go over: a request that started within it is billed in full
    over = await records.add_daily("u1", day, DailyAmounts(tokens=25), None)
    assert over.tokens == 1025


async def test_concurrent_reservations_never_pass_a_limit_together(records):
    import asyncio

    from app.chat.records import DailyAmounts, DailyLimits

    limits = DailyLimits(seconds=55.0)
    outcomes = await asyncio.gather(
        *(records.add_daily("u1", "d", DailyAmounts(seconds=10), limits) for _ in range(20))
    )
    assert sum(outcome is not None for outcome in outcomes) == 5
    assert (await records.daily_usage("u1", "d")).seconds == 50


async def test_two_processes_on_one_sqlite_file_share_the_limit(tmp_path):
    import asyncio

    from app.chat.records import DailyAmounts, DailyLimits

    path = tmp_path / "shared.sqlite3"
    first, second = EmbeddedDatabase(path), EmbeddedDatabase(path)
    a, b = SqliteChatRecords(first), SqliteChatRecords(second)
    limits = DailyLimits(tokens=1000)
    try:
        outcomes = await asyncio.gather(
            *(
                (a if i % 2 else b).add_daily("u1", "d", DailyAmounts(tokens=100), limits)
                for i in range(30)
            )
        )
        assert sum(outcome is not None for outcome in outcomes) == 10
        assert (await a.daily_usage("u1", "d")).tokens == 1000
    finally:
        await first.close()
        await second.close()


def test_processes_opening_a_new_sqlite_file_at_once_all_get_it(tmp_path):
    # Switching a new file to WAL while another process opens it is answered "database is
    # locked" at once, busy timeout or not; each opener must still get a working database.
    import asyncio
    import threading

    from app.chat.records import DailyAmounts

    failures = []
    for round_number in range(40):
        path = tmp_path / f"new-{round_number}.sqlite3"
        start = threading.Barrier(4)

        def open_and_add(path=path, start=start):
            async def add():
                database = EmbeddedDatabase(path)
                try:
                    await SqliteChatRecords(database).add_daily(
                        "u1", "d", DailyAmounts(tokens=1), None
                    )
                finally:
                    await database.close()

            start.wait()
            try:
                asyncio.run(add())
            except Exception as exc:  # the failure the user would see
                failures.append(str(exc))

        threads = [threading.Thread(target=open_and_add) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
