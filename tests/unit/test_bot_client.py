"""The client on a first deploy: commands synced only when changed, no CommandNotFound traceback
for a mention, and the invite URL with what the bot needs."""

import asyncio
import logging
import urllib.parse
from unittest import mock

import discord
import pytest
from discord import app_commands

from app.bot import BotServices, CodeInterpreterBot
from app.bot.invite import invite_url
from tests.fakes.discord_mocks import BOT_ID, mock_message, mock_user


@pytest.fixture
async def bot(chat_and_store, runner, tmp_path):
    chat, store = chat_and_store
    made = CodeInterpreterBot(
        BotServices(chat, store, runner),
        heartbeat_file=tmp_path / "alive",
        commands_hash=tmp_path / "data" / "state" / "slash-commands.sha256",
    )
    for extension in ("app.bot.exts.chat", "app.bot.exts.commands"):
        await made.load_extension(extension)
    made.tree.sync = mock.AsyncMock(return_value=[])
    made._connection.application_id = 4242  # set by login in production
    await made._async_setup_hook()  # the event loop, as login sets it
    yield made
    await made.close()


async def test_slash_commands_sync_only_when_their_definitions_change(bot):
    assert await bot.sync_commands() is True
    assert bot.commands_hash.read_text().strip() == bot.commands_digest()
    assert await bot.sync_commands() is False  # a restart with the same commands
    assert bot.tree.sync.await_count == 1

    @app_commands.command(name="extra", description="a new command")
    async def extra(interaction: discord.Interaction) -> None: ...

    bot.tree.add_command(extra)
    assert await bot.sync_commands() is True
    assert bot.tree.sync.await_count == 2

    bot._connection.application_id = (
        5555  # another application (another token): its commands are new
    )
    assert await bot.sync_commands() is True
    assert bot.tree.sync.await_count == 3


async def test_a_description_change_is_a_change(bot):
    await bot.sync_commands()
    before = bot.commands_digest()
    bot.tree.get_command("reset").description = "Forget this channel's history"
    assert bot.commands_digest() != before
    assert await bot.sync_commands() is True


async def test_an_unwritable_hash_file_only_means_syncing_again(bot, tmp_path):
    (tmp_path / "blocker").write_text("x")
    bot.commands_hash = tmp_path / "blocker" / "hash"
    assert await bot.sync_commands() is True
    assert await bot.sync_commands() is True


async def test_a_message_starting_with_the_mention_logs_no_command_not_found(bot, caplog):
    bot._connection.user = mock_user(BOT_ID, bot=True, cls=discord.ClientUser)
    message = mock_message("hello there, what is 2+2?", mentions_bot=True)
    message.author.bot = False
    caplog.set_level(logging.DEBUG)

    context = await bot.get_context(message)
    assert context.prefix == f"<@{BOT_ID}> " and context.command is None
    await bot.invoke(context)  # what process_commands does with every mention
    await asyncio.sleep(0.05)  # the command_error event runs as its own task

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "CommandNotFound" not in caplog.text and "Traceback" not in caplog.text


async def test_other_command_errors_are_still_reported(bot, caplog):
    from discord.ext import commands

    context = mock.Mock()
    context.command = None
    context.cog = None
    with mock.patch.object(commands.Bot, "on_command_error", mock.AsyncMock()) as default:
        await bot.on_command_error(context, commands.CommandNotFound("x"))
        default.assert_not_awaited()
        await bot.on_command_error(context, commands.CheckFailure("nope"))
        default.assert_awaited_once()


def test_the_invite_url_asks_for_the_scopes_and_permissions_needed():
    url = urllib.parse.urlparse(invite_url(4242))
    query = urllib.parse.parse_qs(url.query)
    assert query["client_id"] == ["4242"]
    assert query["scope"] == ["bot applications.commands"]
    permissions = discord.Permissions(int(query["permissions"][0]))
    assert permissions.send_messages and permissions.send_messages_in_threads
    assert permissions.attach_files and permissions.read_message_history
    assert permissions.view_channel and permissions.embed_links
    assert not permissions.administrator and not permissions.manage_messages
