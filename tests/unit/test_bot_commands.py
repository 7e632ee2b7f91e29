"""Slash commands called through their callbacks, with spec_set Discord mocks."""

import discord
import pytest

from app.bot.exts.commands import CommandsCog, ConfirmView
from app.chat import UsageRecord
from tests.fakes.discord_mocks import mock_bot, mock_interaction
from tests.fakes.openai_server import reply


@pytest.fixture
def cog(chat_and_store, runner):
    chat, store = chat_and_store
    return CommandsCog(mock_bot(chat, store, runner, admin_ids={7}))


def said(interaction) -> str:
    return interaction.response.send_message.await_args.args[0]


async def test_files_list_download_and_empty(cog):
    interaction = mock_interaction()
    await cog.files.callback(cog, interaction)
    assert said(interaction) == "You have no stored files."

    stored = await cog.services.store.save("1", "data.csv", b"a,b\n1,2\n")
    await cog.services.store.save("2", "other.csv", b"x")  # someone else's file
    interaction = mock_interaction()
    await cog.files.callback(cog, interaction, "list")
    text = said(interaction)
    assert f"`{stored.file_id}` data.csv" in text and "expires <t:" in text
    assert "other.csv" not in text
    assert interaction.response.send_message.await_args.kwargs["ephemeral"] is True

    interaction = mock_interaction()
    await cog.files.callback(cog, interaction, "download", stored.file_id)
    sent = interaction.response.send_message.await_args.kwargs["file"]
    assert isinstance(sent, discord.File) and sent.filename == "data.csv"


async def test_files_of_another_user_cannot_be_reached(cog):
    theirs = await cog.services.store.save("2", "secret.csv", b"x")
    interaction = mock_interaction(user_id=1)
    await cog.files.callback(cog, interaction, "download", theirs.file_id)
    assert "You have no file with id" in said(interaction)


async def test_delete_one_needs_confirmation(cog):
    stored = await cog.services.store.save("1", "data.csv", b"a,b\n")
    interaction = mock_interaction()
    await cog.files.callback(cog, interaction, "delete", stored.file_id)
    assert said(interaction).startswith("Delete data.csv")
    view = interaction.response.send_message.await_args.kwargs["view"]
    assert isinstance(view, ConfirmView)
    assert await cog.services.store.get("1", stored.file_id) is not None  # nothing yet

    other = mock_interaction(user_id=2)
    assert not await view.interaction_check(other)  # only the asker can confirm

    click = mock_interaction()
    await view.confirm.callback(click)
    assert click.response.edit_message.await_args.kwargs["content"] == "Deleted data.csv."
    assert await cog.services.store.get("1", stored.file_id) is None


async def test_delete_all_can_be_cancelled(cog):
    await cog.services.store.save("1", "a.csv", b"1")
    await cog.services.store.save("1", "b.csv", b"2")
    interaction = mock_interaction()
    await cog.files.callback(cog, interaction, "delete all")
    assert "Delete all 2 of your files?" in said(interaction)
    view = interaction.response.send_message.await_args.kwargs["view"]
    click = mock_interaction()
    await view.cancel.callback(click)
    assert click.response.edit_message.await_args.kwargs["content"] == "Nothing was deleted."
    assert len(await cog.services.store.list("1")) == 2
    interaction = mock_interaction()
    await cog.files.callback(cog, interaction, "delete all")
    view = interaction.response.send_message.await_args.kwargs["view"]
    await view.confirm.callback(click)
    assert click.response.edit_message.await_args.kwargs["content"] == "Deleted 2 file(s)."


async def test_reset_clears_this_conversation(cog, fake_openai):
    fake_openai.add(reply("hi"))
    await cog.services.chat.turn("1", "50", "hello")
    interaction = mock_interaction(channel_id=50)
    await cog.reset.callback(cog, interaction)
    assert said(interaction) == "Conversation history cleared."
    assert await cog.services.chat.records.load_turns("1", "50") == []
    interaction = mock_interaction(channel_id=50)
    await cog.reset.callback(cog, interaction)
    assert said(interaction) == "There was no history here to clear."


async def test_model_shows_sets_and_refuses(cog):
    interaction = mock_interaction()
    await cog.model.callback(cog, interaction)
    assert "You are using `gpt-4o-mini`" in said(interaction)
    interaction = mock_interaction()
    await cog.model.callback(cog, interaction, "gpt-4o")
    assert said(interaction) == "From now on `gpt-4o` answers you."
    assert await cog.services.chat.model_for("1") == "gpt-4o"
    interaction = mock_interaction()
    await cog.model.callback(cog, interaction, "gpt-9-ultra")
    assert "is not allowed here" in said(interaction)
    choices = await cog._model_choices(mock_interaction(), "llama")
    assert [c.value for c in choices] == ["local-llama"]


async def test_usage_shows_tokens_and_cost_per_model(cog):
    interaction = mock_interaction()
    await cog.usage.callback(cog, interaction)
    assert said(interaction) == "No model usage recorded for you yet."
    records = cog.services.chat.records
    await records.record_usage(UsageRecord("1", "gpt-4o-mini", 1000, 200, 0.00027))
    await records.record_usage(UsageRecord("1", "local-llama", 50, 5, None))
    interaction = mock_interaction()
    await cog.usage.callback(cog, interaction)
    text = said(interaction)
    assert "`gpt-4o-mini`: 1 requests, 1000 input + 200 output tokens, $0.0003" in text
    assert "`local-llama`: 1 requests, 50 input + 5 output tokens, no price known" in text


async def test_usage_shows_today_against_the_budgets_and_the_reset(make_chat, runner, tmp_path):
    from app.chat import MemoryChatRecords
    from app.chat.budget import DailyBudget
    from app.chat.records import DailyAmounts, DailyLimits

    records = MemoryChatRecords()
    budget = DailyBudget(records, DailyLimits(tokens=10_000, seconds=600))
    chat = make_chat(runner, tmp_path, records=records, budget=budget)
    cog = CommandsCog(mock_bot(chat, chat.store, runner))
    await records.add_daily("1", budget.day(), DailyAmounts(2500, 0.01, 90.0), None)
    interaction = mock_interaction()
    await cog.usage.callback(cog, interaction)
    lines = said(interaction).splitlines()
    stamp = int(budget.resets_at().timestamp())
    assert lines[0] == f"Today (UTC; resets <t:{stamp}:t>, <t:{stamp}:R>):"
    assert "- model tokens: 2,500 of 10,000 used, 7,500 left" in lines
    assert "- model cost: $0.0100 used, no daily limit" in lines
    assert "- code execution: 90 s of 600 s used, 510 s left" in lines


async def test_sandbox_is_for_admins_only(cog):
    interaction = mock_interaction(user_id=1)
    await cog.sandbox.callback(cog, interaction)
    assert said(interaction) == "Only the bot's admins can use /sandbox."
    interaction = mock_interaction(user_id=7)
    await cog.sandbox.callback(cog, interaction)
    text = said(interaction)
    assert "Running: 0 of 4 slots; waiting: 0" in text
    assert "network: none" in text and "image: codeinterp-sandbox" in text


async def test_files_list_says_where_each_file_was_shared(cog):
    await cog.services.store.save("1", "here.csv", b"a", scope="guild:77")
    await cog.services.store.save("1", "private.csv", b"a", scope="dm")
    interaction = mock_interaction(guild_id=77)
    await cog.files.callback(cog, interaction, "list")
    lines = said(interaction).splitlines()
    assert any("here.csv" in line and "shared here" in line for line in lines)
    assert any("private.csv" in line and "shared in DMs" in line for line in lines)
    assert "write an id in a message to use it elsewhere" in lines[0]
