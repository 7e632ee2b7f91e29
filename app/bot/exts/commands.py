"""Slash commands: /files, /reset, /model, /usage and the admins' /sandbox. Replies are private."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.replies import split_message
from app.bot.sending import SEND_OPTIONS, upload_limit
from app.chat.messages import usage_report
from app.files import scopes
from app.sandbox import SandboxUnavailable
from app.sizes import human_size

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot

CONFIRM_SECONDS = 60


async def setup(bot: CodeInterpreterBot) -> None:
    await bot.add_cog(CommandsCog(bot))


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


class CommandsCog(commands.Cog):
    def __init__(self, bot: CodeInterpreterBot) -> None:
        self.bot = bot
        self.services = bot.services

    async def _say(self, interaction: discord.Interaction, text: str, **kwargs) -> None:
        await interaction.response.send_message(
            split_message(text)[0], ephemeral=True, **SEND_OPTIONS, **kwargs
        )

    @app_commands.command(name="files", description="List, download or delete your files")
    @app_commands.describe(action="what to do", file_id="the file (for download and delete)")
    async def files(
        self,
        interaction: discord.Interaction,
        action: Literal["list", "download", "delete", "delete all"] = "list",
        file_id: str | None = None,
    ) -> None:
        store = self.services.store
        user_id = str(interaction.user.id)
        if action == "list":
            files = await store.list(user_id)
            if not files:
                await self._say(interaction, "You have no stored files.")
                return
            here = scopes.scope_of(interaction.guild_id)
            lines = [f"Your files ({len(files)}; write an id in a message to use it elsewhere):"]
            for f in files:
                expiry = f"<t:{int(f.expires_at.timestamp())}:R>" if f.expires_at else "never"
                lines.append(
                    f"`{f.file_id}` {f.name} ({f.type}, {human_size(f.size)}), "
                    f"{scopes.describe(f.scope, here)}, expires {expiry}"
                )
            await self._say(interaction, "\n".join(lines))
            return
        if action == "delete all":
            count = len(await store.list(user_id))
            if count == 0:
                await self._say(interaction, "You have no stored files.")
                return

            async def delete_all() -> str:
                return f"Deleted {await store.delete_all(user_id)} file(s)."

            await self._say(
                interaction,
                f"Delete all {count} of your files? This cannot be undone.",
                view=ConfirmView(interaction.user.id, delete_all),
            )
            return
        if not file_id:
            await self._say(interaction, f"Give the file_id of the file to {action} (see /files).")
            return
        stored = await store.get(user_id, file_id.strip())
        if stored is None:
            await self._say(interaction, f"You have no file with id `{file_id.strip()[:40]}`.")
            return
        if action == "download":
            if stored.size > upload_limit(interaction.guild):
                await self._say(
                    interaction,
                    f"{stored.name} ({human_size(stored.size)}) is larger than "
                    "Discord lets me upload here.",
                )
                return
            await self._say(
                interaction,
                f"`{stored.file_id}` {stored.name}",
                file=discord.File(store.absolute_path(stored), filename=stored.name),
            )
            return

        async def delete_one() -> str:
            deleted = await store.delete(user_id, stored.file_id)
            return f"Deleted {stored.name}." if deleted else f"{stored.name} was already gone."

        await self._say(
            interaction,
            f"Delete {stored.name} (`{stored.file_id}`)?",
            view=ConfirmView(interaction.user.id, delete_one),
        )

    @app_commands.command(name="reset", description="Forget this conversation's history")
    async def reset(self, interaction: discord.Interaction) -> None:
        chat = self.services.chat
        cleared = await chat.reset(str(interaction.user.id), str(interaction.channel_id))
        await self._say(
            interaction,
            "Conversation history cleared." if cleared else "There was no history here to clear.",
        )

    @app_commands.command(name="model", description="Show or choose the model that answers you")
    @app_commands.describe(name="one of the allowed models")
    async def model(self, interaction: discord.Interaction, name: str | None = None) -> None:
        chat = self.services.chat
        user_id = str(interaction.user.id)
        allowed = ", ".join(f"`{m}`" for m in chat.allowed_models)
        if name is None:
            await self._say(
                interaction, f"You are using `{await chat.model_for(user_id)}`. Allowed: {allowed}."
            )
        elif await chat.set_model(user_id, name):
            await self._say(interaction, f"From now on `{name}` answers you.")
        else:
            await self._say(interaction, f"`{name[:60]}` is not allowed here. Allowed: {allowed}.")

    @model.autocomplete("name")
    async def _model_choices(self, interaction: discord.Interaction, current: str):
        return [
            app_commands.Choice(name=m, value=m)
            for m in self.services.chat.allowed_models
            if current.lower() in m.lower()
        ][:25]

    @app_commands.command(name="usage", description="Your usage today, what is left, and totals")
    async def usage(self, interaction: discord.Interaction) -> None:
        chat = self.services.chat
        user_id = str(interaction.user.id)
        status = await chat.budget.status(user_id) if chat.budget is not None else None
        totals = await chat.records.usage_totals(user_id)

        def when(moment) -> str:
            stamp = int(moment.timestamp())
            return f"<t:{stamp}:t>, <t:{stamp}:R>"

        await self._say(interaction, usage_report(totals, status, when))

    @app_commands.command(name="sandbox", description="Sandbox queue, runs and policy (admins)")
    @app_commands.default_permissions(manage_guild=True)
    async def sandbox(self, interaction: discord.Interaction) -> None:
        if interaction.user.id not in self.services.admin_ids:
            await self._say(interaction, "Only the bot's admins can use /sandbox.")
            return
        sandbox = self.services.runner
        try:
            status = await sandbox.status()
            policy = await sandbox.describe_policy()
        except SandboxUnavailable as exc:
            await self._say(interaction, f"The sandbox is unavailable right now: {exc}")
            return
        lines = [
            f"Sandbox: {status.where}",
            f"Running: {status.running} of {status.capacity} slots; waiting: {status.waiting}",
            f"Warm: {status.warm_ready} of {status.warm_size} ready",
            f"Timeout: {status.max_timeout:g} s",
            *(f"{key}: {value}" for key, value in policy.items()),
        ]
        await self._say(interaction, "```\n" + "\n".join(lines) + "\n```")
