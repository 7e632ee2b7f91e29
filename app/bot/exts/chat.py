"""Chat in Discord: answers mentions, replies to the bot and DMs; ChatService does the work."""

from __future__ import annotations

import asyncio
import io
import re
from typing import TYPE_CHECKING

import discord
import structlog
from discord.ext import commands

from app.bot.progress import RunProgress
from app.bot.replies import plan_reply
from app.bot.sending import SEND_OPTIONS, inert_links, upload_limit
from app.chat import Upload
from app.files import scopes

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot

log = structlog.get_logger(__name__)
FAILURE_REPLY = "Something went wrong on my side. Please try again."


def to_file(attachment) -> discord.File:
    if attachment.path is not None:
        return discord.File(attachment.path, filename=attachment.filename)
    return discord.File(io.BytesIO(attachment.data), filename=attachment.filename)


async def setup(bot: CodeInterpreterBot) -> None:
    await bot.add_cog(ChatCog(bot))


class ChatCog(commands.Cog):
    def __init__(self, bot: CodeInterpreterBot) -> None:
        self.bot = bot
        self.chat = bot.services.chat

    def addressed(self, message: discord.Message) -> bool:
        """A DM, a mention of the bot, or a reply to one of its messages."""
        me = self.bot.user
        if message.author.bot or me is None:
            return False
        if message.guild is None:
            return True
        if any(user.id == me.id for user in message.mentions):
            return True
        reference = message.reference
        if reference is not None:
            replied = reference.resolved or reference.cached_message
            if isinstance(replied, discord.Message) and replied.author.id == me.id:
                return True
        return False

    def strip_mention(self, content: str) -> str:
        me = self.bot.user
        return re.sub(rf"<@!?{me.id}>", "", content).strip() if me else content.strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self.addressed(message):
            return
        if not self.bot.services.access.allows_message(message):
            log.debug("message ignored: the bot is not enabled there")
            return
        task = asyncio.current_task()
        if task is not None:
            self.bot.track(task)
        user_id = str(message.author.id)
        with structlog.contextvars.bound_contextvars(user_id=user_id):
            try:
                await self._answer(message, user_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat turn failed")
                await message.reply(FAILURE_REPLY, mention_author=False, **SEND_OPTIONS)

    async def _downloads(self, attachments: list[discord.Attachment]) -> list[Upload]:
        """The attachments' bytes, unless Discord says one is over the store's limit or the
        message's total is over the turn's: a file that would be refused is never pulled into
        the bot's memory."""
        limit = self.bot.services.store.max_file_bytes
        room = self.chat.limits.max_upload_bytes
        uploads = []
        for attachment in attachments:
            if attachment.size > limit:
                refused = f"larger than the {limit / 1024**2:g} MB limit, so it was not stored."
            elif attachment.size > room:
                refused = (
                    "not stored: the files of one message may total at most "
                    f"{self.chat.limits.max_upload_bytes / 1024**2:g} MB."
                )
            else:
                room -= attachment.size
                uploads.append(Upload(attachment.filename, await attachment.read()))
                continue
            uploads.append(Upload(attachment.filename, b"", refused=refused))
        return uploads

    async def _answer(self, message: discord.Message, user_id: str) -> None:
        if self.chat.is_busy(user_id):
            await message.reply(
                "I am still working on your previous message; one at a time.",
                mention_author=False,
                **SEND_OPTIONS,
            )
            return
        uploads = await self._downloads(list(message.attachments))
        channel = message.channel
        sandbox = self.bot.services.runner
        domains = self.bot.services.link_domains

        async def send_status(text: str):
            return await channel.send(text, **SEND_OPTIONS)

        progress = RunProgress(send_status, waiting=lambda: sandbox.waiting)
        async with channel.typing():
            answer = await self.chat.turn(
                user_id,
                str(channel.id),
                self.strip_mention(message.content),
                uploads,
                progress,
                scope=scopes.scope_of(message.guild.id if message.guild else None),
            )
        for index, outgoing in enumerate(plan_reply(answer, upload_limit(message.guild))):
            files = [to_file(a) for a in outgoing.attachments]
            content = inert_links(outgoing.content, domains) or None
            if index == 0:
                await message.reply(content, files=files, mention_author=False, **SEND_OPTIONS)
            else:
                await channel.send(content, files=files, **SEND_OPTIONS)
