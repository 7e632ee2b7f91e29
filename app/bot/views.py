"""Short-lived views of slash command replies (private, for the one who asked): confirming a
deletion, turning the pages of /files list. The answer's persistent buttons are buttons.py's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from app.bot.file_list import files_page
from app.bot.sending import NO_MENTIONS

CONFIRM_SECONDS = 60
PAGE_SECONDS = 600


class ConfirmView(discord.ui.View):
    """Confirm / Cancel buttons for a destructive action, usable only by the one who asked."""

    def __init__(self, user_id: int, action: Callable[[], Awaitable[str]]) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self.user_id = user_id
        self.action = action
        self.done = False

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.user_id

    @discord.ui.button(label="Delete", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.done = True
        self.stop()
        await interaction.response.edit_message(content=await self.action(), view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was deleted.", view=None)


class FilesPageView(discord.ui.View):
    """Previous / Next under a page of /files list; each click lists the files anew."""

    def __init__(
        self, user_id: int, load: Callable[[], Awaitable[list]], page: int, pages: int, here: str
    ) -> None:
        super().__init__(timeout=PAGE_SECONDS)
        self.user_id = user_id
        self.load = load
        self.page = page
        self.here = here
        self._enable(pages)

    def _enable(self, pages: int) -> None:
        self.previous.disabled = self.page <= 1
        self.next.disabled = self.page >= pages

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.user_id

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        text, self.page, pages = files_page(await self.load(), page, self.here)
        self._enable(pages)
        await interaction.response.edit_message(
            content=text, view=self if pages > 1 else None, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.page + 1)
