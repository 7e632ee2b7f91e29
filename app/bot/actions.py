"""What the answer's buttons do; their clicks arrive as bot events (app/bot/exts/answers.py).

The code comes from the stored history by the ids in the custom id, so every button works after
a restart except Stop, which only a turn still running in this process has.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import discord
import structlog

from app.bot.buttons import rerun_view
from app.bot.replies import code_message
from app.bot.sending import respond
from app.chat import ChatAnswer, TurnObserver, new_turn_id
from app.chat.service import BUSY, RUN_GONE
from app.files import scopes

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot

log = structlog.get_logger(__name__)
CODE_GONE = (
    "The code of this answer is no longer in the conversation's history "
    "(it was cleared with /reset or trimmed)."
)
DELETE_SCAN = 100  # messages after the answer searched for its follow-ups


async def stop(bot: CodeInterpreterBot, interaction: discord.Interaction, key: str) -> None:
    if bot.live_turns.stop(key):
        await interaction.response.defer()  # the live reply shows "Stopped." itself
        return
    await respond(interaction, "This has already finished.")
    if interaction.message is not None:  # a Stop left by a restart: take it away
        with contextlib.suppress(discord.HTTPException):
            await interaction.message.edit(view=None)


async def rerun(
    bot: CodeInterpreterBot,
    interaction: discord.Interaction,
    user_id: int,
    turn_id: str,
    number: int,
) -> None:
    chat = bot.services.chat
    channel_id = str(interaction.channel_id)
    if chat.is_busy(str(user_id)):
        await respond(interaction, BUSY)
        return
    if number < 1 or await chat.find_run(str(user_id), channel_id, turn_id, number) is None:
        await respond(interaction, RUN_GONE)
        return
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        await respond(interaction, "I cannot post in this channel.")
        return
    await interaction.response.defer()

    async def work(observer: TurnObserver) -> ChatAnswer:
        return await chat.rerun(
            str(user_id),
            channel_id,
            turn_id,
            number,
            observer,
            scopes.scope_of(interaction.guild_id),
        )

    await bot.live_turns.run(
        channel,
        reply_to=interaction.message,
        user_id=user_id,
        key=new_turn_id(),
        idle=f"-# Re-running run {number}…",
        work=work,
        final_view=lambda answer, head_id: rerun_view(
            user_id, turn_id, number, head_id, ran=bool(answer.runs)
        ),
        guild=interaction.guild,
        waiting=lambda: bot.services.runner.waiting,
    )


async def show_code(
    bot: CodeInterpreterBot,
    interaction: discord.Interaction,
    user_id: int,
    turn_id: str,
    number: int,
) -> None:
    chat = bot.services.chat
    codes = await chat.run_codes(str(user_id), str(interaction.channel_id), turn_id)
    if number:
        codes = [(n, code) for n, code in codes if n == number]
    if not codes:
        await respond(interaction, CODE_GONE)
        return
    text, files = code_message(codes)
    await respond(interaction, text, files=[f.to_file() for f in files])


async def delete_answer(
    bot: CodeInterpreterBot, interaction: discord.Interaction, head_id: int
) -> None:
    """Delete the answer's messages: the head and the bot's messages replying to it (the rest
    of its text, its files, and its re-runs with theirs)."""
    channel = interaction.channel
    me = bot.user
    if me is None or not isinstance(channel, discord.abc.Messageable):
        await respond(interaction, "I cannot delete messages here.")
        return
    await interaction.response.defer()
    doomed = {head_id}
    found: list[discord.Message] = []
    # From just before the head (snowflakes only grow), so the head itself is in the scan.
    async for message in channel.history(
        after=discord.Object(head_id - 1), limit=DELETE_SCAN, oldest_first=True
    ):
        if message.author.id != me.id:
            continue
        reference = message.reference
        if message.id == head_id or (reference and reference.message_id in doomed):
            doomed.add(message.id)
            found.append(message)
    for doomed_message in found:
        try:
            await doomed_message.delete()
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            log.warning("answer message not deleted", status=exc.status)
