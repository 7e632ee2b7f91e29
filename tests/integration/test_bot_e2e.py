"""The bot end to end: spec_set Discord mocks -> chat cog -> streaming fake model -> the REAL
sandbox, and the answer's buttons (Stop, Re-run, Code, Delete) as a user presses them, also
after a restart."""

import asyncio

import pytest

from app.bot import actions
from app.bot.buttons import DYNAMIC_ITEMS
from app.bot.exts.chat import ChatCog
from app.sandbox.names import POOL_LABEL
from app.wiring import sandbox_policy
from tests.fakes.discord_mocks import (
    GUILD_ID,
    mock_attachment,
    mock_bot,
    mock_interaction,
    mock_message,
    posted,
    said,
)
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import call, last_tool_result, reply, tool_call, tool_calls

pytestmark = pytest.mark.docker

PLOT = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
df = load_file("data.csv")
df["b"].plot()
plt.savefig("column_b.png")
print(df["b"].sum())
"""


@pytest.fixture
def store(data_dir):
    return memory_store(data_dir)


@pytest.fixture
def cog(make_chat, runner, data_dir, store):
    return ChatCog(mock_bot(make_chat(runner, data_dir, store=store), store, runner))


async def click(bot, posted_message, label, user_id=1, value=None):
    """Press a button as Discord would deliver it, after a restart too: the item is rebuilt
    from its custom id alone, checked, and its event handled by the actions."""
    item = next(
        i
        for i in posted_message.view.children
        if getattr(i.item, "label", None) == label or getattr(i.item, "placeholder", "") == label
    )
    cls = next(
        c for c in DYNAMIC_ITEMS if c.__discord_ui_compiled_template__.fullmatch(item.custom_id)
    )
    channel = posted_message.message.channel
    interaction = mock_interaction(
        user_id, channel.id, client=bot, channel=channel, message=posted_message.message
    )
    match = cls.__discord_ui_compiled_template__.fullmatch(item.custom_id)
    rebuilt = await cls.from_custom_id(interaction, item.item, match)
    if value is not None:
        rebuilt.item._values = [value]
    if not await rebuilt.interaction_check(interaction):
        return interaction
    await rebuilt.callback(interaction)
    name, *args = bot.dispatch.call_args.args
    handler = {
        "answer_rerun": actions.rerun,
        "answer_code": actions.show_code,
        "answer_delete": actions.delete_answer,
        "answer_stop": actions.stop,
    }[name]
    await handler(bot, *args)
    return interaction


async def test_plot_request_with_a_csv_streams_one_reply_and_attaches_the_png(cog, fake_openai):
    fake_openai.add(
        tool_call(PLOT, text="Let me plot it."),
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

    log = posted(message.channel).live()
    head = log[0]
    assert head.content == (
        f"-# Run 1: finished in {head.content.split('finished in ')[1].split(' s')[0]} s · 1 file"
        "\n\n```\n16\n```\n\nLet me plot it.\n\nHere is column b."
    )
    assert [p.filenames for p in log[1:]] == [["column_b.png"]]
    with open(log[1].files[0].fp.name, "rb") as png:  # sent and closed: read it from disk
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [getattr(i.item, "label", "") for i in head.view.children] == [
        "Re-run",
        "Code",
        "Delete",
    ]
    assert fake_openai.requests[0]["stream"] is True


async def test_timeout_gives_a_friendly_reply(cog, fake_openai):
    fake_openai.add(
        tool_call("import time\ntime.sleep(5)", timeout=1), reply("The code took too long.")
    )
    message = mock_message("sleep", dm=True)

    await cog.on_message(message)

    text = posted(message.channel).text()
    assert "The code took too long." in text
    assert "Run 1: stopped at the 1 s time limit" in text
    assert "Traceback" not in text


async def test_mention_spam_in_program_output_pings_nobody(cog, fake_openai):
    spam = "print('@everyone @here <@123> <@&456> ' * 400)"
    fake_openai.add(
        tool_call(spam), lambda body: reply("Output: " + last_tool_result(body)["stdout"][:300])
    )
    message = mock_message("spam", mentions_bot=True)

    await cog.on_message(message)

    log = posted(message.channel)
    assert "@everyone" in log.text()
    for entry in log.messages:
        assert entry.kwargs["allowed_mentions"].to_dict() == {"parse": []}
        assert all(e["allowed_mentions"].to_dict() == {"parse": []} for e in entry.edits)
    # the long output went as a file besides its short head in the reply
    assert [f.filename for f in log.files()] == ["output.txt"]
    # the history keeps a shortened copy of the long run result
    saved = await cog.chat.records.load_turns("1", str(message.channel.id))
    tool_message = [m for m in saved[0].messages if m["role"] == "tool"][0]
    assert tool_message["content"].endswith("[... shortened in history]")
    assert len(tool_message["content"]) < 4100


async def test_a_slow_run_shows_its_status_in_the_live_reply(cog, fake_openai):
    fake_openai.add(tool_call("import time\ntime.sleep(3.5)\nprint('ok')"), reply("Done."))
    message = mock_message("take your time", dm=True)

    await cog.on_message(message)

    head = posted(message.channel).messages[0]
    shown = [e["content"] for e in head.edits]
    assert any(s.startswith("-# Running code (run 1, ") for s in shown), shown
    assert head.content.startswith("-# Run 1: finished in 3.")
    assert head.content.endswith("```\nok\n```\n\nDone.")
    assert len(posted(message.channel).messages) == 1  # one message for the whole turn


async def test_stop_kills_the_run_and_keeps_the_history_consistent(
    cog, fake_openai, engine, settings
):
    fake_openai.add(
        tool_calls(call("print('first')"), call("import time\ntime.sleep(60)")),
        reply("never asked"),
    )
    message = mock_message("two runs", dm=True)
    owned = sandbox_policy(settings).ownership_filter()
    turn = asyncio.create_task(cog.on_message(message))
    log = posted(message.channel)
    for _ in range(300):  # the second run is in its sandbox
        await asyncio.sleep(0.1)
        if (
            cog.chat.runner.slots.running == 1
            and engine.list_containers(owned)
            and any("Run 1:" in (e.get("content") or "") for e in log.messages[0].edits)
        ):
            break
    await click(cog.bot, log.messages[0], "Stop")
    await asyncio.wait_for(turn, 30)
    await cog.chat.runner.wait_removals()

    # the stopped run's container is gone; only the warm pool's may be there (it may have grown
    # with the two arrivals, never above its maximum)
    left = engine.containers(owned)
    assert all(POOL_LABEL in (info.get("Labels") or {}) for info in left), left
    assert len(left) <= (cog.chat.runner.pool.max_size if cog.chat.runner.pool else 0)
    head = log.messages[0]
    assert head.content.startswith("-# Run 1: finished in")
    assert head.content.endswith("-# Stopped.")
    saved = (await cog.chat.records.load_turns("1", str(message.channel.id)))[0]
    roles = [m["role"] for m in saved.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]  # the finished run is kept
    assert saved.messages[-1]["content"] == "(interrupted)" and len(saved.runs) == 1
    assert len(fake_openai.requests) == 1
    # the Stop is gone; what finished can be run again
    assert [getattr(i.item, "label", "") for i in head.view.children] == [
        "Re-run",
        "Code",
        "Delete",
    ]


async def test_rerun_code_and_delete_work_after_a_restart(
    make_chat, runner, data_dir, store, fake_openai
):
    chat = make_chat(runner, data_dir, store=store)
    cog = ChatCog(mock_bot(chat, store, runner))
    fake_openai.add(
        tool_call("print('attempt')\nraise SystemExit(3)"),
        tool_call(PLOT),
        reply("Plotted."),
    )
    message = mock_message(
        "plot b",
        mentions_bot=True,
        attachments=[mock_attachment("data.csv", b"a,b\n1,5\n2,3\n")],
    )
    await cog.on_message(message)
    answer = posted(message.channel).live()[0]
    assert "Re-run one of the runs…" in [
        getattr(i.item, "placeholder", "") for i in answer.view.children
    ]

    # A restart: a new bot and chat service over the same stored conversation and files.
    restarted = mock_bot(
        make_chat(runner, data_dir, store=store, records=chat.records), store, runner
    )
    await store.delete_all("1")  # the user's files changed since, in that server
    await store.save("1", "data.csv", b"a,b\n1,100\n2,200\n", scope=f"guild:{GUILD_ID}")
    await store.save("1", "data.csv", b"a,b\n1,1\n", scope="dm")  # not for that server's runs

    await click(restarted, answer, "Re-run run 2")
    rerun = posted(message.channel).live()[-2]
    assert rerun.reference.message_id == answer.message.id
    assert rerun.content.startswith("-# Run 2: finished in") and "```\n300\n```" in rerun.content
    assert posted(message.channel).live()[-1].filenames == ["column_b.png"]
    assert [getattr(i.item, "label", "") for i in rerun.view.children] == [
        "Re-run",
        "Code",
        "Delete",
    ]

    await click(restarted, answer, "Re-run one of the runs…", value="1")
    first = posted(message.channel).live()[-1]
    assert first.content.startswith("-# Run 1: error after") and "attempt" in first.content

    shown = await click(restarted, answer, "Code", user_id=2)  # anyone may look
    assert 'load_file("data.csv")' in said(shown) and "raise SystemExit(3)" in said(shown)
    refused = await click(restarted, answer, "Re-run run 2", user_id=2)
    assert said(refused).startswith("Only the person who asked")

    await click(restarted, answer, "Delete")
    assert posted(message.channel).live() == []  # the answer, its files and its re-runs
    assert len(fake_openai.requests) == 3  # re-runs never asked the model
