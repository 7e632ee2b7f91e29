"""/files list, download and delete, with file-id autocomplete. Replies are private."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.file_list import ALL, file_choices, files_page
from app.bot.sending import respond, upload_limit
from app.bot.views import ConfirmView, FilesPageView
from app.files import FileStoreError, scopes
from app.sizes import human_size

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot


async def setup(bot: CodeInterpreterBot) -> None:
    await bot.add_cog(FilesCog(bot))


class FilesCog(commands.GroupCog, group_name="files", group_description="Your stored files"):
    def __init__(self, bot: CodeInterpreterBot) -> None:
        self.bot = bot
        self.store = bot.services.store
        super().__init__()

    @app_commands.command(name="list", description="List your stored files, page by page")
    @app_commands.describe(page="which page (10 files a page)")
    async def list_files(self, interaction: discord.Interaction, page: int = 1) -> None:
        user_id = str(interaction.user.id)

        async def load() -> list:
            return await self.store.list(user_id)

        here = scopes.scope_of(interaction.guild_id)
        text, shown, pages = files_page(await load(), page, here)
        view = FilesPageView(interaction.user.id, load, shown, pages, here) if pages > 1 else None
        await respond(interaction, text, view=view)

    @app_commands.command(name="download", description="Get one of your files back")
    @app_commands.describe(file_id="the file (type to search by name or id)")
    async def download(self, interaction: discord.Interaction, file_id: str) -> None:
        stored = await self._find(interaction, file_id)
        if stored is None:
            return
        if stored.size > upload_limit(interaction.guild):
            await respond(
                interaction,
                f"{stored.name} ({human_size(stored.size)}) is larger than Discord lets me "
                "upload here.",
            )
            return
        try:
            file = discord.File(self.store.absolute_path(stored), filename=stored.name)
        except (OSError, FileStoreError):
            await respond(interaction, f"{stored.name} is no longer on disk.")
            return
        await respond(interaction, f"`{stored.file_id}` {stored.name}", files=[file])

    @app_commands.command(name="delete", description="Delete one of your files, or all of them")
    @app_commands.describe(file_id="the file (type to search), or `all`")
    async def delete(self, interaction: discord.Interaction, file_id: str) -> None:
        user_id = str(interaction.user.id)
        if file_id.strip().lower() == ALL:
            count = len(await self.store.list(user_id))
            if count == 0:
                await respond(interaction, "You have no stored files.")
                return

            async def delete_all() -> str:
                return f"Deleted {await self.store.delete_all(user_id)} file(s)."

            await respond(
                interaction,
                f"Delete all {count} of your files? This cannot be undone.",
                view=ConfirmView(interaction.user.id, delete_all),
            )
            return
        stored = await self._find(interaction, file_id)
        if stored is None:
            return

        async def delete_one() -> str:
            deleted = await self.store.delete(user_id, stored.file_id)
            return f"Deleted {stored.name}." if deleted else f"{stored.name} was already gone."

        await respond(
            interaction,
            f"Delete {stored.name} (`{stored.file_id}`)?",
            view=ConfirmView(interaction.user.id, delete_one),
        )

    @download.autocomplete("file_id")
    async def _download_choices(self, interaction: discord.Interaction, current: str):
        return await self._choices(interaction, current, offer_all=False)

    @delete.autocomplete("file_id")
    async def _delete_choices(self, interaction: discord.Interaction, current: str):
        return await self._choices(interaction, current, offer_all=True)

    async def _choices(self, interaction: discord.Interaction, current: str, *, offer_all: bool):
        try:
            files = await self.store.list(str(interaction.user.id))
        except FileStoreError:
            return []
        return [
            app_commands.Choice(name=label, value=value)
            for label, value in file_choices(files, current, offer_all=offer_all)
        ]

    async def _find(self, interaction: discord.Interaction, file_id: str):
        wanted = file_id.strip()
        stored = await self.store.get(str(interaction.user.id), wanted) if wanted else None
        if stored is None:
            await respond(
                interaction, f"You have no file with id `{wanted[:40]}` (see /files list)."
            )
        return stored
