"""Discord objects for tests, mocked with spec_set of the real discord.py classes (typos fail)."""

from __future__ import annotations

import contextlib
from unittest import mock

import discord

from app.bot import BotServices, CodeInterpreterBot

BOT_ID = 900
GUILD_ID = 77


def mock_user(user_id: int, bot: bool = False, cls=discord.Member):
    user = mock.Mock(spec_set=cls)
    user.id = user_id
    user.bot = bot
    user.mention = f"<@{user_id}>"
    return user


def mock_bot(chat, store, runner, admin_ids=frozenset(), link_domains=()) -> mock.Mock:
    services = BotServices(chat, store, runner, frozenset(admin_ids))
    services.link_domains = tuple(link_domains)
    real = CodeInterpreterBot(services)
    bot = mock.Mock(spec_set=real)
    bot.services = real.services
    bot.user = mock_user(BOT_ID, bot=True, cls=discord.ClientUser)
    bot.track = mock.Mock()
    return bot


def mock_channel(channel_id: int = 50):
    channel = mock.Mock(spec_set=discord.TextChannel)
    channel.id = channel_id
    channel.send = mock.AsyncMock(side_effect=lambda *a, **k: mock_sent_message())
    channel.typing = mock.Mock(side_effect=lambda: _AsyncNull())
    return channel


class _AsyncNull(contextlib.AbstractAsyncContextManager):
    async def __aexit__(self, *exc):
        return None


def mock_sent_message():
    sent = mock.Mock(spec_set=discord.Message)
    sent.edit = mock.AsyncMock()
    return sent


def mock_attachment(filename: str, data: bytes):
    attachment = mock.Mock(spec_set=discord.Attachment)
    attachment.filename = filename
    attachment.size = len(data)
    attachment.read = mock.AsyncMock(return_value=data)
    return attachment


def mock_message(
    content: str,
    *,
    author_id: int = 1,
    dm: bool = False,
    mentions_bot: bool = False,
    attachments=(),
    reply_to_bot: bool = False,
    channel=None,
    guild_id: int = GUILD_ID,
):
    message = mock.Mock(spec_set=discord.Message)
    message.content = (f"<@{BOT_ID}> " if mentions_bot else "") + content
    message.author = mock_user(author_id)
    message.mentions = [mock_user(BOT_ID, bot=True)] if mentions_bot else []
    message.attachments = list(attachments)
    message.channel = channel or mock_channel()
    if dm:
        message.guild = None
    else:
        message.guild = mock.Mock(spec_set=discord.Guild)
        message.guild.id = guild_id
        message.guild.filesize_limit = 10 * 1024 * 1024
    message.reference = None
    if reply_to_bot:
        replied = mock.Mock(spec_set=discord.Message)
        replied.author = mock_user(BOT_ID, bot=True)
        message.reference = mock.Mock(spec_set=discord.MessageReference)
        message.reference.resolved = replied
        message.reference.cached_message = None
    message.reply = mock.AsyncMock()
    return message


def mock_interaction(
    user_id: int = 1, channel_id: int = 50, guild: bool = True, guild_id: int = GUILD_ID
):
    interaction = mock.Mock(spec_set=discord.Interaction)
    interaction.user = mock_user(user_id)
    interaction.channel_id = channel_id
    if guild:
        interaction.guild = mock.Mock(spec_set=discord.Guild)
        interaction.guild.id = guild_id
        interaction.guild.filesize_limit = 10 * 1024 * 1024
        interaction.guild_id = guild_id
    else:
        interaction.guild = None
        interaction.guild_id = None
    interaction.response = mock.Mock(spec_set=discord.InteractionResponse)
    interaction.response.send_message = mock.AsyncMock()
    interaction.response.edit_message = mock.AsyncMock()
    return interaction


def sent_text(send_mock) -> str:
    """All the text passed to a send/reply AsyncMock, joined."""
    parts = []
    for call in send_mock.await_args_list:
        content = call.args[0] if call.args else call.kwargs.get("content")
        parts.append(content or "")
    return "\n".join(parts)
