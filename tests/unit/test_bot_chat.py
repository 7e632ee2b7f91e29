"""The chat cog with spec_set Discord mocks, the real ChatService and the fake model server
(streaming, as the bot uses it)."""

import asyncio
import re

import discord
import pytest

from app.bot.exts.chat import ChatCog
from app.bot.turns import FAILURE_REPLY
from app.chat import TurnLimits
from tests.fakes.discord_mocks import (
    mock_attachment,
    mock_bot,
    mock_channel,
    mock_message,
    mock_sent_message,
    mock_thread,
    posted,
)
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import error, reply


@pytest.fixture
def cog(chat_and_store, runner):
    chat, store = chat_and_store
    return ChatCog(mock_bot(chat, store, runner))


def final_text(message) -> str:
    return posted(message.channel).text()


@pytest.mark.parametrize(
    ("kwargs", "answered"),
    [
        ({"mentions_bot": True}, True),
        ({"dm": True}, True),
        ({"reply_to_bot": True}, True),
        ({}, False),
    ],
)
async def test_answers_mentions_replies_and_dms_only(cog, fake_openai, kwargs, answered):
    fake_openai.add(reply("Hello @everyone <@123>"))
    message = mock_message("hi there", **kwargs)

    await cog.on_message(message)

    log = posted(message.channel)
    if not answered:
        assert log.messages == []
        assert fake_openai.requests == []
        return
    head = log.messages[0]
    assert head.content == "Hello @everyone <@123>"  # the live reply, edited to the answer
    assert head.reference.message_id == message.id
    assert head.reference.fail_if_not_exists is False  # a deleted question never fails it
    assert head.kwargs["allowed_mentions"].to_dict() == {"parse": []}  # nobody is pinged
    assert head.kwargs["mention_author"] is False
    assert head.kwargs["suppress_embeds"] is True  # Discord fetches no link preview
    assert all(e["allowed_mentions"].to_dict() == {"parse": []} for e in head.edits)
    request = fake_openai.requests[0]
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert request["messages"][-1]["content"].endswith("hi there")  # mention stripped
    assert "<@900>" not in request["messages"][-1]["content"]


async def test_the_live_reply_appears_at_once_with_stop_and_ends_with_delete(cog, fake_openai):
    fake_openai.add(reply("Plain answer."))
    message = mock_message("hi", dm=True)
    await cog.on_message(message)
    head = posted(message.channel).messages[0]
    assert message.channel.send.await_args_list[0].args[0] == "-# Thinking…"
    first_view = message.channel.send.await_args_list[0].kwargs["view"]
    assert [item.custom_id.split(":")[1] for item in first_view.children] == ["stop"]
    # no code ran: only Delete stays, naming this answer's first message
    assert head.custom_ids() == [f"ci:delete:1:{head.message.id}"]


async def test_other_bots_are_ignored(cog, fake_openai):
    message = mock_message("hi", dm=True)
    message.author.bot = True
    await cog.on_message(message)
    assert posted(message.channel).messages == []


async def test_model_failure_is_a_short_reply_without_secrets(cog, fake_openai):
    fake_openai.add(error(401, "Incorrect API key provided: sk-test-secret-123"))
    message = mock_message("hi", dm=True)
    await cog.on_message(message)
    text = final_text(message)
    assert "credentials" in text and "sk-" not in text and "Traceback" not in text


async def test_unexpected_failure_says_so_without_a_traceback(cog, fake_openai):
    message = mock_message("hi", dm=True, attachments=[mock_attachment("a.csv", b"a,b\n")])
    message.attachments[0].read.side_effect = discord.HTTPException(
        type("R", (), {"status": 500, "reason": "boom"})(), "internal path /srv/x"
    )
    await cog.on_message(message)
    assert final_text(message) == FAILURE_REPLY


async def test_one_turn_per_user_at_a_time(cog, fake_openai):
    cog.chat._busy.add("1")
    message = mock_message("hi", dm=True)
    await cog.on_message(message)
    assert "previous message" in final_text(message)
    assert fake_openai.requests == []


async def test_uploads_are_stored_and_refusals_explained(cog, fake_openai):
    fake_openai.add(reply("Got it."))
    message = mock_message(
        "what is in here?",
        mentions_bot=True,
        attachments=[
            mock_attachment("data.csv", b"a,b\n1,2\n"),
            mock_attachment("tool.exe", b"MZ"),
        ],
    )
    await cog.on_message(message)
    text = final_text(message)
    assert text.startswith("Got it.")
    assert "tool.exe: this file type is not supported." in text
    assert [f.name for f in await cog.bot.services.store.list("1")] == ["data.csv"]


async def test_an_attachment_over_the_limit_is_never_downloaded(cog, fake_openai):
    fake_openai.add(reply("Here is my answer."))
    huge = mock_attachment("huge.csv", b"a,b\n")
    huge.size = cog.bot.services.store.max_file_bytes + 1  # as Discord reports it
    message = mock_message("summarise this", mentions_bot=True, attachments=[huge])
    await cog.on_message(message)
    huge.read.assert_not_awaited()
    text = final_text(message)
    assert "huge.csv: larger than the" in text and "so it was not stored" in text
    assert await cog.bot.services.store.list("1") == []


async def test_a_reply_to_a_persons_message_brings_its_text_and_files(cog, fake_openai):
    fake_openai.add(reply("Their numbers add up to 3."))
    channel = mock_channel()
    theirs = mock_message(
        "here are my numbers", author_id=2, channel=channel,
        attachments=[mock_attachment("nums.csv", b"n\n1\n2\n")],
    )  # fmt: skip
    message = mock_message(
        "what do these add up to?", mentions_bot=True, replying_to=theirs, channel=channel
    )

    await cog.on_message(message)

    asked = fake_openai.requests[0]["messages"][-1]["content"]
    # the author's name is theirs to choose: it reaches the model as a quoted string
    assert '[The user is replying to this message from "user2":]\n> here are my numbers' in asked
    assert asked.index("here are my numbers") < asked.index("what do these add up to?")
    stored = await cog.bot.services.store.list("1")
    assert [f.name for f in stored] == ["nums.csv"]  # stored for the one who asked
    assert f'"nums.csv" (id {stored[0].file_id})' in asked
    # replying to it again does not store a second copy
    fake_openai.add(reply("Still 3."))
    again = mock_message("and now?", mentions_bot=True, replying_to=theirs, channel=channel)
    await cog.on_message(again)
    assert len(await cog.bot.services.store.list("1")) == 1


async def test_a_reply_to_the_bot_quotes_its_answer_as_its_own(cog, fake_openai):
    fake_openai.add(reply("Yes."))
    mine = mock_sent_message()
    mine.content = "The mean is 4.2."
    message = mock_message("are you sure?", replying_to=mine)
    await cog.on_message(message)
    asked = fake_openai.requests[0]["messages"][-1]["content"]
    assert "from you (the assistant):]\n> The mean is 4.2." in asked


async def test_a_reply_to_a_message_deleted_meanwhile_is_still_answered(cog, fake_openai):
    fake_openai.add(reply("Answered anyway."))
    gone = mock_sent_message(author_id=3)
    message = mock_message("about that", mentions_bot=True, replying_to=gone)
    message.reference.resolved = None  # not in the cache; fetching says 404
    await cog.on_message(message)
    message.channel.fetch_message.assert_awaited_once()
    assert final_text(message) == "Answered anyway."
    assert "replying to" not in fake_openai.requests[0]["messages"][-1]["content"]


async def test_auto_thread_opens_a_thread_with_its_own_history(chat_and_store, runner, fake_openai):
    chat, store = chat_and_store
    cog = ChatCog(mock_bot(chat, store, runner, auto_thread=True))
    thread = mock_thread(thread_id=77)
    message = mock_message("Plot my sales please\nmore detail", mentions_bot=True)
    message.create_thread.return_value = thread
    fake_openai.add(reply("In the thread."))

    await cog.on_message(message)

    assert message.create_thread.await_args.kwargs["name"] == "Plot my sales please"
    assert posted(thread).text() == "In the thread."
    assert posted(thread).messages[0].reference is None  # the thread starts from the question
    assert posted(message.channel).messages == []
    assert len(await chat.records.load_turns("1", "77")) == 1
    assert await chat.records.load_turns("1", str(message.channel.id)) == []

    # in its own thread the bot answers without being mentioned
    fake_openai.add(reply("Still here."))
    follow_up = mock_message("and by month?", channel=thread)
    await cog.on_message(follow_up)
    assert posted(thread).messages[-1].content == "Still here."
    assert len(await chat.records.load_turns("1", "77")) == 2


async def test_auto_thread_refused_answers_in_the_channel(chat_and_store, runner, fake_openai):
    chat, store = chat_and_store
    cog = ChatCog(mock_bot(chat, store, runner, auto_thread=True))
    message = mock_message("hi", mentions_bot=True)
    message.create_thread.side_effect = discord.Forbidden(
        type("R", (), {"status": 403, "reason": "no"})(), "Missing Permissions"
    )
    fake_openai.add(reply("Here instead."))
    await cog.on_message(message)
    assert final_text(message) == "Here instead."


async def test_a_thread_someone_else_opened_needs_a_mention(cog, fake_openai):
    message = mock_message("hello", channel=mock_thread(owner_id=5))
    await cog.on_message(message)
    assert fake_openai.requests == []


async def test_trimmed_history_is_noted(chat_and_store, runner, fake_openai, make_chat, tmp_path):
    chat = make_chat(runner, tmp_path, store=chat_and_store[1], history_tokens=600)
    cog = ChatCog(mock_bot(chat, chat_and_store[1], runner))
    channel = mock_channel()
    for i in range(4):
        fake_openai.add(reply(f"answer {i} " + "word " * 150))
        await cog.on_message(mock_message(f"question {i}", dm=True, channel=channel))
    last = posted(channel).messages[-1].content
    assert re.search(r"-# (1 earlier turn|\d+ earlier turns) of this conversation w", last)
    assert "earlier turn" not in posted(channel).messages[0].content


async def test_stop_keeps_what_was_streamed_and_the_history_consistent(cog, fake_openai):
    hold = asyncio.Event()
    fake_openai.add(reply("Partial answer that never ends", hold=hold))
    message = mock_message("tell me a long story", dm=True)
    turn = asyncio.create_task(cog.on_message(message))
    log = posted(message.channel)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if log.messages and log.messages[0].edits:
            break
    stop_id = log.messages[0].custom_ids()[0]
    assert stop_id.startswith("ci:stop:1:")
    assert cog.bot.live_turns.stop(stop_id.rsplit(":", 1)[1])

    await asyncio.wait_for(turn, 10)
    hold.set()

    head = log.messages[0]
    assert head.content.startswith("Partial")  # what the user saw stays
    assert head.content.endswith("-# Stopped.")
    assert head.custom_ids() == [f"ci:delete:1:{head.message.id}"]  # no Stop any more
    saved = await cog.chat.records.load_turns("1", str(message.channel.id))
    assert [m["content"] for m in saved[0].messages] == ["tell me a long story", "(interrupted)"]
    assert not cog.chat.is_busy("1")
    assert not cog.bot.live_turns.stop(stop_id.rsplit(":", 1)[1])  # nothing left to stop


async def test_links_in_the_answer_are_inert_unless_their_domain_is_allowed(
    chat_and_store, runner, fake_openai
):
    chat, store = chat_and_store
    cog = ChatCog(mock_bot(chat, store, runner, link_domains=("docs.python.org",)))
    fake_openai.add(
        reply(
            "See [the docs](https://evil.example/log?d=secret) or https://evil.example/?q=1 "
            "and https://docs.python.org/3/library/csv.html"
        )
    )
    message = mock_message("hi", dm=True)
    await cog.on_message(message)
    text = final_text(message)
    assert "](" not in text  # no masked link: the address is shown
    assert "the docs (`https://evil.example/log?d=secret`)" in text
    assert "`https://evil.example/?q=1`" in text
    assert "<https://docs.python.org/3/library/csv.html>" in text
    head = posted(message.channel).messages[0]
    assert head.kwargs["suppress_embeds"] is True  # Discord fetches no link preview
    assert all(e["suppress"] is True for e in head.edits)


async def test_attachments_past_the_turns_total_are_never_downloaded(
    make_chat, runner, fake_openai, tmp_path
):
    store = memory_store(tmp_path)
    chat = make_chat(runner, tmp_path, store=store, limits=TurnLimits(max_upload_bytes=1000))
    cog = ChatCog(mock_bot(chat, store, runner))
    fake_openai.add(reply("ok"))
    first = mock_attachment("a.csv", b"a,b\n")
    first.size = 600
    second = mock_attachment("b.csv", b"a,b\n")
    second.size = 600
    message = mock_message("both", mentions_bot=True, attachments=[first, second])
    await cog.on_message(message)
    first.read.assert_awaited_once()
    second.read.assert_not_awaited()
    assert "b.csv: not stored: the files of one message may total at most" in final_text(message)


async def test_uploads_are_stored_in_the_scope_of_where_they_were_shared(cog, fake_openai):
    store = cog.bot.services.store
    in_server = mock_message(
        "", mentions_bot=True, attachments=[mock_attachment("a.csv", b"a\n1\n")], guild_id=5
    )
    in_dm = mock_message("", dm=True, attachments=[mock_attachment("b.csv", b"b\n1\n")])
    await cog.on_message(in_server)
    await cog.on_message(in_dm)
    assert {f.name: f.scope for f in await store.list("1")} == {"a.csv": "guild:5", "b.csv": "dm"}
