"""Discord objects for tests, mocked with spec_set of the real discord.py classes (typos fail).

A mocked channel keeps what the bot posted in it (`posted(channel)`): each message as a user
would see it at the end (its latest text after edits, its files, its buttons, what it replies
to, whether it was deleted), so tests assert on what a user would notice.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import discord

from app.bot import BotServices, CodeInterpreterBot
from app.bot.sending import allow_link_domains

BOT_ID = 900
_message_ids = itertools.count(10_000)
GUILD_ID = 77


def mock_user(user_id: int, bot: bool = False, cls=discord.Member):
    user = mock.Mock(spec_set=cls)
    user.id = user_id
    user.bot = bot
    user.mention = f"<@{user_id}>"
    user.display_name = f"user{user_id}"
    return user


def mock_bot(
    chat, store, runner, admin_ids=frozenset(), link_domains=(), *, auto_thread=False
) -> mock.Mock:
    services = BotServices(
        chat,
        store,
        runner,
        frozenset(admin_ids),
        link_domains=tuple(link_domains),
        auto_thread=auto_thread,
    )
    allow_link_domains(services.link_domains)  # as CodeInterpreterBot does
    real = CodeInterpreterBot(services)
    bot = mock.Mock(spec_set=real)
    bot.services = real.services
    bot.user = mock_user(BOT_ID, bot=True, cls=discord.ClientUser)
    bot.track = mock.Mock()
    bot.live_turns = real.live_turns
    bot.dispatch = mock.Mock()
    return bot


@dataclass
class Posted:
    """One message the bot sent, as it stands now."""

    message: Any
    content: str | None
    files: list[discord.File] = field(default_factory=list)
    view: discord.ui.View | None = None
    reference: Any = None
    kwargs: dict = field(default_factory=dict)
    edits: list[dict] = field(default_factory=list)
    deleted: bool = False

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.files]

    def custom_ids(self) -> list[str]:
        if self.view is None:
            return []
        return [getattr(item, "custom_id", "") for item in self.view.children]


class Log:
    def __init__(self) -> None:
        self.messages: list[Posted] = []

    def live(self) -> list[Posted]:
        return [p for p in self.messages if not p.deleted]

    def text(self) -> str:
        return "\n".join(p.content or "" for p in self.live())

    def files(self) -> list[discord.File]:
        return [f for p in self.live() for f in p.files]

    def by_id(self, message_id: int) -> Posted:
        return next(p for p in self.messages if p.message.id == message_id)


def posted(channel) -> Log:
    return channel.send.log


def mock_sent_message(channel=None, author_id: int = BOT_ID):
    return _sent(channel, author_id)[0]


def _sent(channel, author_id: int = BOT_ID):
    """A message as Discord returns it, and the slot its Posted record goes in."""
    sent = mock.Mock(spec_set=discord.Message)
    sent.id = next(_message_ids)
    sent.author = mock_user(author_id, bot=author_id == BOT_ID)
    sent.channel = channel
    sent.attachments = []
    sent.reference = None
    record: dict[str, Posted] = {}

    async def edit(**kwargs):
        if "record" in record:
            entry = record["record"]
            entry.edits.append(kwargs)
            if "content" in kwargs:
                entry.content = kwargs["content"]
            if "view" in kwargs:
                entry.view = kwargs["view"]
        return sent

    async def delete(**kwargs):
        if "record" in record:
            record["record"].deleted = True

    sent.edit = mock.AsyncMock(side_effect=edit)
    sent.delete = mock.AsyncMock(side_effect=delete)
    sent.to_reference = mock.Mock(side_effect=lambda **kw: _reference(sent.id, channel, **kw))
    return sent, record


def _reference(message_id, channel, fail_if_not_exists=True, **_):
    reference = mock.Mock(spec_set=discord.MessageReference)
    reference.message_id = message_id
    reference.channel_id = getattr(channel, "id", None)
    reference.fail_if_not_exists = fail_if_not_exists
    reference.resolved = None
    reference.cached_message = None
    return reference


def mock_channel(channel_id: int = 50, cls=discord.TextChannel):
    channel = mock.Mock(spec_set=cls)
    channel.id = channel_id
    log = Log()

    async def send(content=None, **kwargs):
        sent, record = _sent(channel)
        entry = Posted(
            message=sent,
            content=content,
            files=list(kwargs.get("files") or []),
            view=kwargs.get("view"),
            reference=kwargs.get("reference"),
            kwargs=kwargs,
        )
        if entry.reference is not None:
            sent.reference = entry.reference
        record["record"] = entry
        log.messages.append(entry)
        return sent

    async def history(after=None, limit=100, oldest_first=True, **_):
        floor = after.id if after is not None else 0
        for entry in list(log.messages)[:limit]:
            if entry.message.id > floor and not entry.deleted:
                yield entry.message

    channel.send = mock.AsyncMock(side_effect=send)
    channel.send.log = log
    channel.history = mock.Mock(side_effect=history)
    channel.typing = mock.Mock(side_effect=lambda: _AsyncNull())
    channel.fetch_message = mock.AsyncMock(side_effect=_not_found)
    return channel


async def _not_found(*args, **kwargs):
    raise discord.NotFound(_response(404), "Unknown Message")


def _response(status: int):
    return type("Response", (), {"status": status, "reason": "scripted"})()


def http_error(status: int, message: str = "scripted") -> discord.HTTPException:
    return discord.HTTPException(_response(status), message)


class _AsyncNull(contextlib.AbstractAsyncContextManager):
    async def __aexit__(self, *exc):
        return None


def mock_attachment(filename: str, data: bytes):
    attachment = mock.Mock(spec_set=discord.Attachment)
    attachment.filename = filename
    attachment.size = len(data)
    attachment.read = mock.AsyncMock(return_value=data)
    return attachment


def mock_guild(filesize_limit: int = 10 * 1024 * 1024, guild_id: int = GUILD_ID):
    guild = mock.Mock(spec_set=discord.Guild)
    guild.id = guild_id
    guild.filesize_limit = filesize_limit
    return guild


def mock_message(
    content: str,
    *,
    author_id: int = 1,
    dm: bool = False,
    mentions_bot: bool = False,
    attachments=(),
    reply_to_bot: bool = False,
    replying_to=None,
    channel=None,
    guild_id: int = GUILD_ID,
):
    """A user's message. `replying_to` is a message (mock_message or a bot's sent message) it
    replies to; `reply_to_bot` makes one of the bot's."""
    message = mock.Mock(spec_set=discord.Message)
    message.id = next(_message_ids)
    message.content = (f"<@{BOT_ID}> " if mentions_bot else "") + content
    message.author = mock_user(author_id)
    message.mentions = [mock_user(BOT_ID, bot=True)] if mentions_bot else []
    message.attachments = list(attachments)
    message.channel = channel or mock_channel()
    message.guild = None if dm else mock_guild(guild_id=guild_id)
    message.reference = None
    if reply_to_bot and replying_to is None:
        replying_to = mock_sent_message(channel=message.channel)
        replying_to.content = "An earlier answer."
    if replying_to is not None:
        message.reference = _reference(replying_to.id, message.channel)
        message.reference.resolved = replying_to
    message.to_reference = mock.Mock(
        side_effect=lambda **kw: _reference(message.id, message.channel, **kw)
    )
    message.reply = mock.AsyncMock()
    message.create_thread = mock.AsyncMock()
    return message


def mock_thread(thread_id: int = 70, owner_id: int = BOT_ID):
    thread = mock_channel(thread_id, cls=discord.Thread)
    thread.owner_id = owner_id
    return thread


def mock_interaction(
    user_id: int = 1,
    channel_id: int = 50,
    guild: bool = True,
    *,
    client=None,
    channel=None,
    message=None,
    guild_id: int = GUILD_ID,
):
    interaction = mock.Mock(spec_set=discord.Interaction)
    interaction.user = mock_user(user_id)
    interaction.channel_id = channel_id
    interaction.channel = channel
    interaction.message = message
    interaction.client = client
    interaction.guild = mock_guild(guild_id=guild_id) if guild else None
    interaction.guild_id = guild_id if guild else None
    interaction.response = mock.Mock(spec_set=discord.InteractionResponse)
    interaction.response.send_message = mock.AsyncMock()
    interaction.response.edit_message = mock.AsyncMock()
    interaction.response.defer = mock.AsyncMock()
    interaction.response.is_done = mock.Mock(return_value=False)
    interaction.followup = mock.Mock(spec_set=discord.Webhook)
    interaction.followup.send = mock.AsyncMock()
    return interaction


def said(interaction) -> str:
    """The text of an interaction's (first) response."""
    call = interaction.response.send_message.await_args
    return call.args[0] if call.args else call.kwargs.get("content")


def sent_text(send_mock) -> str:
    """All the text passed to a send/reply AsyncMock, joined."""
    parts = []
    for call in send_mock.await_args_list:
        content = call.args[0] if call.args else call.kwargs.get("content")
        parts.append(content or "")
    return "\n".join(parts)
