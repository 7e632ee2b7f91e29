"""Chat in Discord: answers mentions, replies to the bot, DMs and its own threads; ChatService
does the work, app/bot/turns.py keeps the live reply."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
import structlog
from discord.ext import commands

from app.bot.buttons import answer_view
from app.bot.context import (
    Downloads,
    in_own_thread,
    open_thread,
    replied_message,
    reply_context,
    strip_mention,
)
from app.bot.replies import THINKING
from app.bot.sending import send
from app.bot.turns import FAILURE_REPLY
from app.chat import ChatAnswer, ReplyContext, TurnObserver, Upload, new_turn_id
from app.chat.service import BUSY
from app.files import scopes

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot

log = structlog.get_logger(__name__)


async def setup(bot: CodeInterpreterBot) -> None:
    await bot.add_cog(ChatCog(bot))


class ChatCog(commands.Cog):
    def __init__(self, bot: CodeInterpreterBot) -> None:
        self.bot = bot
        self.chat = bot.services.chat

    def addressed(self, message: discord.Message) -> bool:
        """A DM, a mention of the bot, a reply to one of its messages, or a thread it opened."""
        me = self.bot.user
        if message.author.bot or me is None:
            return False
        if message.guild is None or in_own_thread(message.channel, me):
            return True
        if any(user.id == me.id for user in message.mentions):
            return True
        reference = message.reference
        if reference is not None:
            replied = reference.resolved or reference.cached_message
            if isinstance(replied, discord.Message) and replied.author.id == me.id:
                return True
        return False

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
                await send(message.channel, FAILURE_REPLY, reply_to=message)

    async def _answer(self, message: discord.Message, user_id: str) -> None:
        if self.chat.is_busy(user_id):
            await send(message.channel, BUSY, reply_to=message)
            return
        text = strip_mention(message.content, self.bot.user)
        downloads = Downloads(
            self.bot.services.store.max_file_bytes, self.chat.limits.max_upload_bytes
        )
        uploads = [await downloads.read(a) for a in message.attachments]
        context: ReplyContext | None = None
        if message.reference is not None:
            replied = await replied_message(message)
            if replied is not None:
                context = reply_context(replied, self.bot.user)
                uploads += [await downloads.read(a, from_reply=True) for a in replied.attachments]
        channel: discord.abc.Messageable = message.channel
        reply_to: discord.Message | None = message
        if self._opens_thread(message):
            thread = await open_thread(message, text)
            if thread is not None:
                channel, reply_to = thread, None  # the thread starts from the message itself
        await self._turn(message, channel, reply_to, text, uploads, context)

    def _opens_thread(self, message: discord.Message) -> bool:
        return (
            self.bot.services.auto_thread
            and message.guild is not None
            and isinstance(message.channel, discord.TextChannel)
        )

    async def _turn(
        self,
        message: discord.Message,
        channel: discord.abc.Messageable,
        reply_to: discord.Message | None,
        text: str,
        uploads: list[Upload],
        context: ReplyContext | None,
    ) -> None:
        author = message.author.id
        turn_id = new_turn_id()
        conversation = str(getattr(channel, "id", message.channel.id))

        async def work(observer: TurnObserver) -> ChatAnswer:
            return await self.chat.turn(
                str(author),
                conversation,
                text,
                uploads,
                observer,
                reply_to=context,
                turn_id=turn_id,
                scope=scopes.scope_of(message.guild.id if message.guild else None),
            )

        await self.bot.live_turns.run(
            channel,
            reply_to=reply_to,
            user_id=author,
            key=turn_id,
            idle=THINKING,
            work=work,
            final_view=lambda answer, head_id: answer_view(author, turn_id, head_id, answer.runs),
            guild=message.guild,
            waiting=lambda: self.bot.services.runner.waiting,
        )
