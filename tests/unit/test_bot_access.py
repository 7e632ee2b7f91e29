"""Who may use the bot where: allow-lists, threads, roles and DMs, for messages and slash
commands; /sandbox's default permissions."""

from unittest import mock

import discord
import pytest

from app.bot.access import NOT_ENABLED, AccessPolicy
from app.bot.client import AccessTree, CodeInterpreterBot
from app.bot.exts.chat import ChatCog
from app.bot.exts.commands import CommandsCog
from app.bot.exts.files import FilesCog
from app.bot.services import BotServices
from app.config import Settings
from app.wiring import Components
from tests.fakes.discord_mocks import (
    mock_bot,
    mock_channel,
    mock_interaction,
    mock_message,
    posted,
)
from tests.fakes.openai_server import reply


def role(role_id: int):
    made = mock.Mock(spec_set=discord.Role)
    made.id = role_id
    return made


def thread_in(parent_id: int, thread_id: int = 555):
    thread = mock_channel(thread_id, cls=discord.Thread)
    thread.parent_id = parent_id
    thread.owner_id = 3  # someone else's thread: the bot answers mentions there
    return thread


def member_with(*role_ids: int):
    member = mock.Mock(spec_set=discord.Member)
    member.id = 1
    member.bot = False
    member.roles = [role(r) for r in role_ids]
    return member


CHANNEL = mock_channel(50)


@pytest.mark.parametrize(
    ("policy", "guild_id", "channel", "member", "allowed"),
    [
        (AccessPolicy(), 1, CHANNEL, member_with(), True),
        (AccessPolicy(), None, CHANNEL, member_with(), True),
        (AccessPolicy(allow_dms=False), None, CHANNEL, member_with(), False),
        (AccessPolicy(guilds=frozenset({1})), 1, CHANNEL, member_with(), True),
        (AccessPolicy(guilds=frozenset({1})), 2, CHANNEL, member_with(), False),
        (AccessPolicy(guilds=frozenset({1})), None, CHANNEL, member_with(), True),  # DMs apart
        (AccessPolicy(channels=frozenset({50})), 1, CHANNEL, member_with(), True),
        (AccessPolicy(channels=frozenset({51})), 1, CHANNEL, member_with(), False),
        (AccessPolicy(channels=frozenset({50})), 1, thread_in(50), member_with(), True),
        (AccessPolicy(channels=frozenset({555})), 1, thread_in(50), member_with(), False),
        (AccessPolicy(roles=frozenset({9})), 1, CHANNEL, member_with(9, 3), True),
        (AccessPolicy(roles=frozenset({9})), 1, CHANNEL, member_with(3), False),
        (AccessPolicy(roles=frozenset({9})), None, CHANNEL, member_with(), True),
        (
            AccessPolicy(guilds=frozenset({1}), channels=frozenset({50}), roles=frozenset({9})),
            1,
            thread_in(50),
            member_with(9),
            True,
        ),
        (
            AccessPolicy(guilds=frozenset({1}), channels=frozenset({50}), roles=frozenset({9})),
            1,
            thread_in(50),
            member_with(8),
            False,
        ),
    ],
)
def test_the_rule(policy, guild_id, channel, member, allowed):
    assert policy.allows(guild_id, channel, member) is allowed


def test_the_rule_is_built_from_the_settings(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        allowed_guild_ids="1, 2",
        allowed_channel_ids="50",
        allowed_role_ids="9 10",
        allow_dms=False,
    )
    assert Components(settings).access() == AccessPolicy(
        frozenset({1, 2}), frozenset({50}), frozenset({9, 10}), False
    )


@pytest.fixture
def services(chat_and_store, runner):
    chat, store = chat_and_store
    return chat, store, runner


def chat_cog(services, policy):
    bot = mock_bot(*services)
    bot.services.access = policy
    return ChatCog(bot)


async def test_messages_elsewhere_are_ignored_without_a_model_call(services, fake_openai):
    cog = chat_cog(services, AccessPolicy(guilds=frozenset({77}), allow_dms=False))
    elsewhere = mock_message("hi", mentions_bot=True, guild_id=78)
    in_dm = mock_message("hi", dm=True)
    await cog.on_message(elsewhere)
    await cog.on_message(in_dm)
    assert posted(elsewhere.channel).messages == [] and posted(in_dm.channel).messages == []
    assert fake_openai.requests == []

    fake_openai.add(reply("hello"))
    allowed = mock_message("hi", mentions_bot=True, guild_id=77)
    await cog.on_message(allowed)
    assert posted(allowed.channel).text() == "hello"


async def test_a_thread_of_an_allowed_channel_is_answered(services, fake_openai):
    cog = chat_cog(services, AccessPolicy(channels=frozenset({50})))
    fake_openai.add(reply("in the thread"))
    message = mock_message("hi", mentions_bot=True, channel=thread_in(50))
    await cog.on_message(message)
    assert posted(message.channel).text() == "in the thread"
    other = mock_message("hi", mentions_bot=True, channel=thread_in(60))
    await cog.on_message(other)
    assert posted(other.channel).messages == []


def tree_for(services, policy) -> AccessTree:
    chat, store, runner = services
    bot = CodeInterpreterBot(BotServices(chat, store, runner, access=policy))
    assert isinstance(bot.tree, AccessTree)
    return bot.tree


async def test_slash_commands_elsewhere_answer_not_enabled_privately(services):
    tree = tree_for(services, AccessPolicy(guilds=frozenset({77})))
    interaction = mock_interaction(guild_id=78)
    interaction.channel = mock_channel(50)
    interaction.type = discord.InteractionType.application_command
    assert await tree.interaction_check(interaction) is False
    interaction.response.send_message.assert_awaited_once()
    call = interaction.response.send_message.await_args
    assert call.args == (NOT_ENABLED,) and call.kwargs["ephemeral"] is True

    allowed = mock_interaction(guild_id=77)
    allowed.channel = mock_channel(50)
    assert await tree.interaction_check(allowed) is True
    allowed.response.send_message.assert_not_awaited()


async def test_autocomplete_elsewhere_offers_nothing(services):
    tree = tree_for(services, AccessPolicy(allow_dms=False))
    interaction = mock_interaction(guild=False)
    interaction.channel = None
    interaction.type = discord.InteractionType.autocomplete
    interaction.response.autocomplete = mock.AsyncMock()
    assert await tree.interaction_check(interaction) is False
    interaction.response.autocomplete.assert_awaited_once_with([])


def test_sandbox_is_hidden_from_members_without_manage_server(services):
    cog = CommandsCog(mock_bot(*services))
    assert cog.sandbox.default_permissions == discord.Permissions(manage_guild=True)
    assert cog.reset.default_permissions is None  # everyone else's commands stay visible
    assert FilesCog(mock_bot(*services)).app_command.default_permissions is None
