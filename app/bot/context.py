"""What a message brings into a turn besides its own text: the message it replies to (its text
and its files, whoever wrote it), and where the conversation goes on (a thread, with
CHAT_AUTO_THREAD)."""

from __future__ import annotations

import re
from typing import Literal

import discord
import structlog

from app.chat import ReplyContext, Upload

log = structlog.get_logger(__name__)
THREAD_NAME_CHARS = 80  # Discord allows 100
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day without messages


class Downloads:
    """The attachments of one turn (the message's and those of the message it replies to), read
    only when the file store and the turn would take them: Discord says each file's size first,
    so a file over the store's limit, or past the turn's total (CHAT_MAX_UPLOAD_MB), is never
    pulled into the bot's memory."""

    def __init__(self, max_bytes: int, max_total: int) -> None:
        self.max_bytes = max_bytes
        self.max_total = max_total
        self.room = max_total

    async def read(self, attachment: discord.Attachment, *, from_reply: bool = False) -> Upload:
        refused = ""
        if attachment.size > self.max_bytes:
            refused = (
                f"larger than the {self.max_bytes / 1024**2:g} MB limit, so it was not stored."
            )
        elif attachment.size > self.room:
            refused = (
                "not stored: the files of one message may total at most "
                f"{self.max_total / 1024**2:g} MB."
            )
        if refused:
            return Upload(attachment.filename, b"", refused=refused, from_reply=from_reply)
        self.room -= attachment.size
        return Upload(attachment.filename, await attachment.read(), from_reply=from_reply)


async def replied_message(message: discord.Message) -> discord.Message | None:
    """The message this one replies to, when it still exists in the same channel."""
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    found = reference.resolved or reference.cached_message
    if isinstance(found, discord.Message):
        return found
    if isinstance(found, discord.DeletedReferencedMessage):
        return None
    if reference.channel_id != message.channel.id:
        return None  # a reply across channels (a forward): not this conversation's to read
    try:
        return await message.channel.fetch_message(reference.message_id)
    except discord.HTTPException as exc:  # deleted meanwhile, or not ours to read
        log.info("replied message not read", status=exc.status)
        return None


def reply_context(replied: discord.Message, me: discord.abc.User | None) -> ReplyContext:
    by_bot = me is not None and replied.author.id == me.id
    return ReplyContext(author=replied.author.display_name, text=replied.content, by_bot=by_bot)


def strip_mention(content: str, me: discord.abc.User | None) -> str:
    return re.sub(rf"<@!?{me.id}>", "", content).strip() if me else content.strip()


def thread_name(text: str) -> str:
    """The first line of the question, shortened: what the thread is about."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = re.sub(r"<[@#][!&]?\d+>", "", first).strip()
    if len(first) > THREAD_NAME_CHARS:
        first = first[: THREAD_NAME_CHARS - 1].rstrip() + "…"
    return first or "Code interpreter"


async def open_thread(message: discord.Message, text: str) -> discord.Thread | None:
    """A thread from the message (a mention in a server text channel), or None when Discord
    refuses (no permission, a channel kind without threads): then the answer goes in the
    channel."""
    try:
        return await message.create_thread(
            name=thread_name(text), auto_archive_duration=THREAD_ARCHIVE_MINUTES
        )
    except discord.HTTPException as exc:
        log.warning("thread not opened", status=exc.status)
        return None


def in_own_thread(channel: object, me: discord.abc.User | None) -> bool:
    """A thread the bot opened: its conversation, where every message is for the bot."""
    return me is not None and isinstance(channel, discord.Thread) and channel.owner_id == me.id
