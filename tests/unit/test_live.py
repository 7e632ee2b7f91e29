"""The live reply: edits coalesced by a pure scheduler (injected clock), text past 2000
characters continued in follow-ups, buttons on the last message, the status line as a turn goes."""

import asyncio

import discord

from app.bot.buttons import answer_view, running_view
from app.bot.display import TurnDisplay
from app.bot.live import EditScheduler, LiveReply
from app.chat import CodeRun
from app.sandbox import RunResult, RunStatus
from tests.fakes.discord_mocks import http_error, mock_channel, posted


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_scheduler_keeps_edits_a_second_apart_and_sends_the_newest():
    clock = Clock()
    scheduler = EditScheduler(interval=1.0, clock=clock)
    scheduler.shown("Thinking")  # the message was just sent
    assert scheduler.wait_time() is None and scheduler.take() is None

    scheduler.offer("H")
    assert scheduler.wait_time() == 1.0 and scheduler.take() is None
    clock.now += 0.4
    scheduler.offer("Hel")
    clock.now += 0.3
    scheduler.offer("Hello")  # three pieces within the second: one edit
    assert scheduler.take() is None
    clock.now += 0.3
    assert scheduler.take() == "Hello"
    assert scheduler.wait_time() is None  # nothing new

    clock.now += 5
    scheduler.offer("Hello")  # unchanged: never sent again
    assert scheduler.wait_time() is None
    scheduler.offer("Hello, world")
    assert scheduler.take() == "Hello, world"  # long after the last edit: at once
    scheduler.offer("Hello, world!")
    assert scheduler.wait_time() == 1.0


async def start(text="-# Thinking…", **kwargs):
    channel = mock_channel()
    view = running_view(1, "abc")
    head = await channel.send(text, view=view)
    return channel, LiveReply(channel, head, text, running_view=view, **kwargs)


async def test_updates_in_a_burst_become_one_edit():
    channel, live = await start()
    for i in range(50):
        live.update(f"word {i}")
    messages = await live.finish("the answer", None)
    head = posted(channel).messages[0]
    assert [e["content"] for e in head.edits] == ["the answer"]
    assert head.view is None and messages == [head.message]


async def test_live_edits_come_while_the_turn_goes():
    channel, live = await start(scheduler=EditScheduler(interval=0.0))
    live.update("first part")
    for _ in range(50):
        await asyncio.sleep(0.01)
        if posted(channel).messages[0].edits:
            break
    head = posted(channel).messages[0]
    assert head.content == "first part"
    assert head.custom_ids() == ["ci:stop:1:abc"]  # Stop stays while it runs
    await live.finish("first part, and the rest", None)
    assert head.content == "first part, and the rest"


async def test_long_text_continues_in_follow_ups_with_the_buttons_on_the_last():
    channel, live = await start()
    text = "\n".join(f"line {i} " + "x" * 60 for i in range(70))
    view = answer_view(1, "abc", 0, [])
    messages = await live.finish(text, view)
    log = posted(channel).messages
    assert len(messages) == len(log) == 3
    assert all(len(p.content) <= 2000 for p in log)
    assert "\n".join(p.content for p in log) == text
    head = log[0]
    assert head.view is None  # Stop is gone from the head
    assert log[-1].view is view
    assert all(p.reference.message_id == head.message.id for p in log[1:])
    assert all(p.reference.fail_if_not_exists is False for p in log[1:])


async def test_a_reply_deleted_meanwhile_is_posted_again():
    channel, live = await start()
    head = posted(channel).messages[0]
    head.message.edit.side_effect = discord.NotFound(
        type("R", (), {"status": 404, "reason": "gone"})(), "Unknown Message"
    )
    await live.finish("the answer", None)
    assert posted(channel).messages[-1].content == "the answer"


async def test_a_refused_final_edit_still_delivers_the_text():
    channel, live = await start()
    posted(channel).messages[0].message.edit.side_effect = http_error(500)
    await live.finish("the answer", None)
    assert posted(channel).messages[-1].content == "the answer"


class FakeLive:
    def __init__(self) -> None:
        self.shown: list[str] = []

    def update(self, text: str) -> None:
        self.shown.append(text)

    async def stop(self) -> None:
        return None


async def test_the_status_line_follows_the_turn():
    clock = Clock()
    waiting = [0]
    live = FakeLive()
    display = TurnDisplay(live, lambda: waiting[0], clock=clock, tick=3600)  # type: ignore[arg-type]
    display.model_started()
    assert live.shown[-1] == "-# Thinking…"
    display.text_delta("Let me compute that.")
    assert live.shown[-1] == "Let me compute that."
    display.run_started(1, "print(1)")
    waiting[0] = 3
    display.run_queued(3)
    clock.now += 4
    assert display.render().endswith("-# Waiting for a free sandbox (position 3, 4 s)")
    waiting[0] = 0  # our turn came
    clock.now += 8
    assert display.render().endswith("-# Running code (run 1, 12 s)")
    await display.run_finished(CodeRun("print(1)", RunResult("r", RunStatus.OK, stdout="1\n")))
    display.model_started()
    assert live.shown[-1].endswith("Let me compute that.\n\n-# Thinking…")  # asked again
    display.text_delta("The answer is 1.")
    assert live.shown[-1] == (
        "-# Run 1: finished in 0.0 s\n\n```\n1\n```\n\nLet me compute that.\n\nThe answer is 1."
    )
    stopped = display.partial_answer()
    assert stopped.text == "Let me compute that.\n\nThe answer is 1." and stopped.notices
    await display.close()
