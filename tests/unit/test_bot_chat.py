"""The chat cog with spec_set Discord mocks, the real ChatService and the fake model server."""

import discord
import pytest

from app.bot.exts.chat import FAILURE_REPLY, ChatCog
from app.chat import TurnLimits
from tests.fakes.discord_mocks import (
    mock_attachment,
    mock_bot,
    mock_message,
    sent_text,
)
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import error, reply


@pytest.fixture
def cog(chat_and_store, runner):
    chat, store = chat_and_store
    return ChatCog(mock_bot(chat, store, runner))


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

    if not answered:
        message.reply.assert_not_awaited()
        assert fake_openai.requests == []
        return
    message.reply.assert_awaited_once()
    call = message.reply.await_args
    assert call.args[0] == "Hello @everyone <@123>"
    assert call.kwargs["allowed_mentions"].to_dict() == {"parse": []}  # nobody is pinged
    assert call.kwargs["suppress_embeds"] is True  # Discord fetches no link preview
    assert call.kwargs["mention_author"] is False
    assert fake_openai.requests[0]["messages"][-1]["content"] == "hi there"  # mention stripped


async def test_other_bots_are_ignored(cog, fake_openai):
    message = mock_message("hi", dm=True)
    message.author.bot = True
    await cog.on_message(message)
    message.reply.assert_not_awaited()


async def test_model_failure_is_a_short_reply_without_secrets(cog, fake_openai):
    fake_openai.add(error(401, "Incorrect API key provided: sk-test-secret-123"))
    message = mock_message("hi", dm=True)
    await cog.on_message(message)
    text = sent_text(message.reply)
    assert "credentials" in text and "sk-" not in text and "Traceback" not in text


async def test_unexpected_failure_says_so_without_a_traceback(cog, fake_openai):
    message = mock_message("hi", dm=True, attachments=[mock_attachment("a.csv", b"a,b\n")])
    message.attachments[0].read.side_effect = discord.HTTPException(
        type("R", (), {"status": 500, "reason": "boom"})(), "internal path /srv/x"
    )
    await cog.on_message(message)
    assert sent_text(message.reply) == FAILURE_REPLY


async def test_one_turn_per_user_at_a_time(cog, fake_openai):
    cog.chat._busy.add("1")
    message = mock_message("hi", dm=True)
    await cog.on_message(message)
    assert "previous message" in sent_text(message.reply)
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
    text = sent_text(message.reply)
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
    text = sent_text(message.reply)
    assert "huge.csv: larger than the" in text and "so it was not stored" in text
    assert await cog.bot.services.store.list("1") == []


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
    text = sent_text(message.reply)
    assert "](" not in text  # no masked link: the address is shown
    assert "the docs (`https://evil.example/log?d=secret`)" in text
    assert "`https://evil.example/?q=1`" in text
    assert "<https://docs.python.org/3/library/csv.html>" in text
    assert message.reply.await_args.kwargs["suppress_embeds"] is True


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
    assert "b.csv: not stored: the files of one message may total at most" in sent_text(
        message.reply
    )


async def test_uploads_are_stored_in_the_scope_of_where_they_were_shared(cog, fake_openai):
    store = cog.bot.services.store
    in_server = mock_message(
        "", mentions_bot=True, attachments=[mock_attachment("a.csv", b"a\n1\n")], guild_id=5
    )
    in_dm = mock_message("", dm=True, attachments=[mock_attachment("b.csv", b"b\n1\n")])
    await cog.on_message(in_server)
    await cog.on_message(in_dm)
    assert {f.name: f.scope for f in await store.list("1")} == {"a.csv": "guild:5", "b.csv": "dm"}
