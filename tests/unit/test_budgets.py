"""Daily budgets: refused at the edge with the reset time, no model call or run when over, and
never passed together by concurrent turns of one user."""

import asyncio
import json
from datetime import UTC, datetime

import pytest

from app.chat import MemoryChatRecords
from app.chat.budget import DailyBudget
from app.chat.records import DailyAmounts, DailyLimits
from app.chat.sqlite import SqliteChatRecords
from app.database import EmbeddedDatabase
from tests.fakes.openai_server import reply, slow, tool_call

NOON = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)


def budget_for(records, clock=lambda: NOON, **limits) -> DailyBudget:
    return DailyBudget(records, DailyLimits(**limits), clock=clock)


async def test_over_the_token_budget_no_model_call_and_the_reset_time(
    make_chat, runner, tmp_path, fake_openai
):
    records = MemoryChatRecords()
    budget = budget_for(records, tokens=1000)
    chat = make_chat(runner, tmp_path, records=records, budget=budget)
    await records.add_daily("u1", "2026-03-04", DailyAmounts(tokens=1000), None)

    answer = await chat.turn("u1", "c1", "hello")

    assert fake_openai.requests == []
    assert answer.error == (
        "You have used today's budget of 1,000 model tokens. It resets at 00:00 UTC "
        "(in 11 h 30 min)."
    )
    # another user, and the same user tomorrow, are not limited by it
    fake_openai.add(reply("hi"), reply("hi again"))
    assert (await chat.turn("u2", "c1", "hello")).text == "hi"
    budget.clock = lambda: datetime(2026, 3, 5, 0, 0, 1, tzinfo=UTC)
    assert (await chat.turn("u1", "c1", "hello")).text == "hi again"


async def test_at_the_edge_a_request_that_does_not_fit_is_refused_before_it_is_sent(
    make_chat, runner, tmp_path, fake_openai
):
    records = MemoryChatRecords()
    chat = make_chat(runner, tmp_path, records=records, budget=budget_for(records, tokens=3000))
    fake_openai.add(reply("short", prompt_tokens=2000, completion_tokens=500))
    assert (await chat.turn("u1", "c1", "hi")).text == "short"
    assert (await records.daily_usage("u1", "2026-03-04")).tokens == 2500  # reported, not guessed

    answer = await chat.turn("u1", "c1", "please read this: " + "word " * 2000)

    assert len(fake_openai.requests) == 1
    assert answer.error.startswith(
        "What is left of today's budget of 3,000 model tokens is not enough for this request."
    )
    assert (await records.daily_usage("u1", "2026-03-04")).tokens == 2500  # nothing held


async def test_a_failed_request_releases_its_reservation(make_chat, runner, tmp_path, fake_openai):
    from tests.fakes.openai_server import error

    records = MemoryChatRecords()
    chat = make_chat(runner, tmp_path, records=records, budget=budget_for(records, tokens=10**6))
    fake_openai.add(error(500))
    await chat.turn("u1", "c1", "hi")
    assert await records.daily_usage("u1", "2026-03-04") == DailyAmounts()


async def test_the_cost_budget_counts_estimated_dollars(make_chat, runner, tmp_path, fake_openai):
    records = MemoryChatRecords()
    chat = make_chat(runner, tmp_path, records=records, budget=budget_for(records, cost=0.001))
    # gpt-4o-mini: 0.15 in, 0.60 out per million -> 1000 + 1000 tokens cost $0.00075
    fake_openai.add(reply("a", prompt_tokens=1000, completion_tokens=1000), reply("b"))
    assert (await chat.turn("u1", "c1", "hi")).text == "a"
    assert (await chat.turn("u1", "c1", "hi")).text == "b"  # $0.00025 left is enough
    used = await records.daily_usage("u1", "2026-03-04")
    assert used.cost == pytest.approx(0.00075 + (100 * 0.15 + 20 * 0.60) / 1e6)
    await records.add_daily("u1", "2026-03-04", DailyAmounts(cost=0.001), None)
    answer = await chat.turn("u1", "c1", "hi")
    assert answer.error.startswith("You have used today's budget of $0.0010 of model use.")


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_concurrent_turns_of_one_user_never_pass_the_budget_together(
    make_chat, runner, tmp_path, fake_openai, store
):
    # Two bot processes sharing one store: each has its own ChatService (its own one-turn-per-
    # user lock), so only the store's atomic reservation stands between them and the limit.
    database = EmbeddedDatabase(tmp_path / "shared.sqlite3")
    records = SqliteChatRecords(database) if store == "sqlite" else MemoryChatRecords()
    first, second = (
        make_chat(runner, tmp_path, records=records, budget=budget_for(records, tokens=3000))
        for _ in range(2)
    )
    text = "summarise: " + "word " * 1500  # about 1500 tokens: one fits, two do not
    fake_openai.add(slow(0.5, reply("one")), reply("two"))

    answers = await asyncio.gather(first.turn("u1", "c1", text), second.turn("u1", "c2", text))

    assert len(fake_openai.requests) == 1
    assert sorted(a.text or "refused" for a in answers) == ["one", "refused"]
    assert any(a.error.startswith("What is left of today's budget") for a in answers)
    await database.close()


async def test_without_limits_today_is_still_counted(make_chat, runner, tmp_path, fake_openai):
    records = MemoryChatRecords()
    chat = make_chat(runner, tmp_path, records=records, budget=budget_for(records))
    fake_openai.add(reply("a", prompt_tokens=300, completion_tokens=30))
    await chat.turn("u1", "c1", "hi")
    assert (await records.daily_usage("u1", "2026-03-04")).tokens == 330


async def test_no_run_when_the_sandbox_seconds_are_used_up(
    make_chat, runner, tmp_path, fake_openai
):
    records = MemoryChatRecords()
    chat = make_chat(runner, tmp_path, records=records, budget=budget_for(records, seconds=60))
    await records.add_daily("u1", "2026-03-04", DailyAmounts(seconds=59.5), None)
    fake_openai.add(tool_call("print(1)"), reply("I could not run it today."))

    answer = await chat.turn("u1", "c1", "run something")

    assert answer.runs == []  # no sandbox was asked for
    result = json.loads(fake_openai.requests[1]["messages"][-1]["content"])
    assert result["status"] == "refused" and "used up" in result["message"]
    assert answer.text == "I could not run it today."
    assert "You have used today's budget of 60 s of code execution." in answer.notices[0]
    assert "resets at 00:00 UTC" in answer.notices[0]


async def test_a_run_is_granted_at_most_the_seconds_left(tmp_path):
    records = MemoryChatRecords()
    budget = budget_for(records, seconds=100)
    await records.add_daily("u1", "2026-03-04", DailyAmounts(seconds=70), None)
    reservation, note = await budget.run_allowance("u1", 300)
    assert reservation.amounts.seconds == 30
    assert note == (
        "Only 30 s of today's code execution time were left, so the run was limited to that."
    )
    await budget.settle(reservation, DailyAmounts(seconds=4.2))
    assert (await records.daily_usage("u1", "2026-03-04")).seconds == pytest.approx(74.2)
    reservation, note = await budget.run_allowance("u1", 10)
    assert reservation.amounts.seconds == 10 and note == ""


async def test_concurrent_runs_share_the_seconds_left(tmp_path):
    database = EmbeddedDatabase(tmp_path / "s.sqlite3")
    records = SqliteChatRecords(database)
    budget = budget_for(records, seconds=100)
    grants = await asyncio.gather(*(budget.reserve_run("u1", 30) for _ in range(6)))
    granted = [g.amounts.seconds for g in grants if g is not None]
    assert sum(granted) == pytest.approx(100)  # 30 + 30 + 30 + 10, then nothing
    assert sorted(granted) == [10, 30, 30, 30]
    await database.close()
