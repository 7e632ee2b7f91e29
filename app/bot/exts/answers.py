"""The answer's buttons: registered at start-up (so clicks on old answers work after a
restart); each click arrives as a bot event from app/bot/buttons.py and is done by
app/bot/actions.py."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import discord
import structlog
from discord.ext import commands

from app.bot import actions
from app.bot.access import NOT_ENABLED
from app.bot.buttons import DYNAMIC_ITEMS
from app.bot.sending import respond
from app.bot.turns import FAILURE_REPLY

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot

log = structlog.get_logger(__name__)


async def setup(bot: CodeInterpreterBot) -> None:
    bot.add_dynamic_items(*DYNAMIC_ITEMS)
    await bot.add_cog(AnswersCog(bot))


class AnswersCog(commands.Cog):
    def __init__(self, bot: CodeInterpreterBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_answer_stop(self, interaction: discord.Interaction, key: str) -> None:
        await self._safely(interaction, actions.stop(self.bot, interaction, key))

    @commands.Cog.listener()
    async def on_answer_rerun(
        self, interaction: discord.Interaction, user_id: int, turn_id: str, number: int
    ) -> None:
        with structlog.contextvars.bound_contextvars(user_id=str(user_id)):
            await self._safely(
                interaction, actions.rerun(self.bot, interaction, user_id, turn_id, number)
            )

    @commands.Cog.listener()
    async def on_answer_code(
        self, interaction: discord.Interaction, user_id: int, turn_id: str, number: int
    ) -> None:
        await self._safely(
            interaction, actions.show_code(self.bot, interaction, user_id, turn_id, number)
        )

    @commands.Cog.listener()
    async def on_answer_delete(self, interaction: discord.Interaction, head_id: int) -> None:
        await self._safely(interaction, actions.delete_answer(self.bot, interaction, head_id))

    async def _safely(self, interaction: discord.Interaction, work: Coroutine[Any, Any, None]):
        if not self.bot.services.access.allows_interaction(interaction):
            work.close()  # never started
            await respond(interaction, NOT_ENABLED)
            return
        try:
            await work
        except Exception:
            log.exception("button action failed")
            try:
                await respond(interaction, FAILURE_REPLY)
            except discord.HTTPException:
                pass
