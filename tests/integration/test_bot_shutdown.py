"""Graceful shutdown: a turn cancelled mid-run leaves no container and keeps the history."""

import asyncio

import discord
import pytest

from app.bot import BotServices, CodeInterpreterBot
from app.bot.exts.chat import ChatCog
from app.wiring import sandbox_policy
from tests.fakes.discord_mocks import BOT_ID, mock_message, mock_user, posted
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import tool_call

pytestmark = pytest.mark.docker


async def wait_for(predicate, seconds=30.0):
    for _ in range(int(seconds * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_close_cancels_running_turns_removes_containers_and_saves_history(
    fake_openai, make_chat, runner, engine, settings, data_dir, tmp_path
):
    store = memory_store(data_dir)
    chat = make_chat(runner, data_dir, store=store)
    bot = CodeInterpreterBot(BotServices(chat, store, runner), heartbeat_file=tmp_path / "alive")
    cog = ChatCog(bot)
    bot._connection.user = mock_user(BOT_ID, bot=True, cls=discord.ClientUser)
    fake_openai.add(tool_call("import time\ntime.sleep(60)"))
    message = mock_message("long job", dm=True)
    owned = sandbox_policy(settings).ownership_filter()

    task = asyncio.create_task(cog.on_message(message))
    # Closed while the container is being created: the most likely moment to leak one.
    await wait_for(lambda: runner.slots.running == 1 and engine.list_containers(owned))

    await bot.close()

    assert task.cancelled()
    await runner.close()  # the rest of the bot's shutdown: pool and pending removals
    assert engine.list_containers(owned) == []
    saved = await chat.records.load_turns(str(message.author.id), str(message.channel.id))
    assert [turn.messages for turn in saved] == [
        [{"role": "user", "content": "long job"}, {"role": "assistant", "content": "(interrupted)"}]
    ]
    # the live reply says what happened instead of "Running code" forever, and loses its Stop
    [reply] = posted(message.channel).messages
    assert reply.content.endswith(
        "-# The bot was restarted while this was running; ask again, or use Re-run."
    )
    assert reply.view is None


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
async def test_a_run_cancelled_at_any_moment_of_setup_leaves_no_container(
    runner, engine, settings, make_request, delay
):
    owned = sandbox_policy(settings).ownership_filter()
    task = asyncio.create_task(runner.run(make_request("import time\ntime.sleep(30)")))
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await runner.close()  # as at shutdown: the warm pool and removals still pending
    assert engine.list_containers(owned) == []
