"""Slash commands (/help, /reset, /model, /usage, /sandbox) called through their callbacks,
with spec_set Discord mocks."""

import pytest

from app.bot.exts.commands import CommandsCog
from app.bot.replies import MESSAGE_LIMIT
from app.chat import UsageRecord
from tests.fakes.discord_mocks import mock_bot, mock_interaction, said
from tests.fakes.openai_server import reply


@pytest.fixture
def cog(chat_and_store, runner):
    chat, store = chat_and_store
    return CommandsCog(mock_bot(chat, store, runner, admin_ids={7}))


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


async def test_help_says_what_the_bot_does_its_limits_and_the_file_commands(cog):
    interaction = mock_interaction()
    await cog.show_help.callback(cog, interaction)
    text = said(interaction)
    assert len(text) <= MESSAGE_LIMIT
    assert interaction.response.send_message.await_args.kwargs["ephemeral"] is True
    assert "runs up to 300 s" in text  # CODE_EXECUTION_TIMEOUT's default
    assert "at most 10 runs and 600 s of run time per message" in text  # CHAT_MAX_* defaults
    assert "files up to 50 MB, 100 MB per message, 20 per person" in text
    assert "kept for 48 hours" in text
    assert "100 messages a minute" in text  # the tests' rate limit
    for command in ("/files list", "/files download", "/files delete", "/reset", "/model"):
        assert command in text
    assert "Stop" in text and "Re-run" in text and "Code" in text
