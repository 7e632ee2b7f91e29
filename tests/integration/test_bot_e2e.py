"""The bot end to end: spec_set Discord mocks -> chat cog -> fake model -> the REAL sandbox."""

from unittest.mock import AsyncMock

import discord
import pytest

from app.bot.exts.chat import ChatCog
from tests.fakes.discord_mocks import (
    mock_attachment,
    mock_bot,
    mock_message,
    mock_sent_message,
    sent_text,
)
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import last_tool_result, reply, tool_call

pytestmark = pytest.mark.docker

PLOT = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
df = load_file("data.csv")
df["b"].plot()
plt.savefig("column_b.png")
"""


@pytest.fixture
def cog(make_chat, runner, data_dir):
    store = memory_store(data_dir)
    return ChatCog(mock_bot(make_chat(runner, data_dir, store=store), store, runner))


def sent_files(send_mock) -> list[discord.File]:
    return [f for call in send_mock.await_args_list for f in call.kwargs.get("files") or []]


async def test_plot_request_with_a_csv_gets_a_png_reply(cog, fake_openai):
    fake_openai.add(
        tool_call(PLOT),
        lambda body: reply(
            "Here is column b." if last_tool_result(body)["status"] == "ok" else "failed"
        ),
    )
    message = mock_message(
        "plot column b of this",
        mentions_bot=True,
        attachments=[mock_attachment("data.csv", b"a,b\n1,5\n2,3\n3,8\n")],
    )

    await cog.on_message(message)

    assert message.reply.await_args.args[0] == "Here is column b."
    files = sent_files(message.reply)
    assert [f.filename for f in files] == ["column_b.png"]
    assert files[0].fp.read(8) == b"\x89PNG\r\n\x1a\n"


async def test_timeout_gives_a_friendly_reply(cog, fake_openai):
    fake_openai.add(
        tool_call("import time\ntime.sleep(5)", timeout=1), reply("The code took too long.")
    )
    message = mock_message("sleep", dm=True)

    await cog.on_message(message)

    text = sent_text(message.reply)
    assert "The code took too long." in text
    assert "The code ran longer than the 1 s limit and was stopped." in text
    assert "Traceback" not in text


async def test_mention_spam_in_program_output_pings_nobody(cog, fake_openai):
    spam = "print('@everyone @here <@123> <@&456> ' * 400)"
    fake_openai.add(
        tool_call(spam), lambda body: reply("Output: " + last_tool_result(body)["stdout"][:300])
    )
    message = mock_message("spam", mentions_bot=True)

    await cog.on_message(message)

    calls = message.reply.await_args_list + message.channel.send.await_args_list
    assert "@everyone" in sent_text(message.reply)
    for call in calls:
        assert call.kwargs["allowed_mentions"].to_dict() == {"parse": []}
    # the long output went as a file, not as pings in text
    assert [f.filename for f in sent_files(message.reply)] == ["output.txt"]
    # the history keeps a shortened copy of the long run result
    saved = await cog.chat.records.load_turns("1", str(message.channel.id))
    tool_message = [m for m in saved[0] if m["role"] == "tool"][0]
    assert tool_message["content"].endswith("[... shortened in history]")
    assert len(tool_message["content"]) < 4100


async def test_slow_run_shows_a_live_status_edited_to_the_result(cog, fake_openai):
    fake_openai.add(tool_call("import time\ntime.sleep(3.5)\nprint('ok')"), reply("Done."))
    message = mock_message("take your time", dm=True)
    status = mock_sent_message()
    message.channel.send = AsyncMock(return_value=status)

    await cog.on_message(message)

    status_call = message.channel.send.await_args_list[0]
    assert status_call.args[0].startswith("Running your code (")
    assert status_call.kwargs["allowed_mentions"].to_dict() == {"parse": []}
    assert status.edit.await_args.kwargs["content"].startswith("Code finished in 3.")
    assert sent_text(message.reply) == "Done."
