"""Slash commands: /help, /reset, /model, /usage and the admins' /sandbox (/files is
files.py's). Replies are private."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.help import Limits, help_text
from app.bot.replies import split_message
from app.bot.sending import respond
from app.chat.messages import usage_report
from app.sandbox import SandboxUnavailable

if TYPE_CHECKING:
    from app.bot.client import CodeInterpreterBot


async def setup(bot: CodeInterpreterBot) -> None:
    await bot.add_cog(CommandsCog(bot))


class CommandsCog(commands.Cog):
    def __init__(self, bot: CodeInterpreterBot) -> None:
        self.bot = bot
        self.services = bot.services

    async def _say(self, interaction: discord.Interaction, text: str) -> None:
        await respond(interaction, split_message(text)[0])

    @app_commands.command(name="help", description="What I can do, my limits and my commands")
    async def show_help(self, interaction: discord.Interaction) -> None:
        services = self.services
        store, chat = services.store, services.chat
        limits = Limits(
            run_seconds=services.runner.max_timeout,
            file_mb=store.max_file_bytes / 1024**2,
            files_per_user=store.max_files_per_user,
            expiry_hours=(
                None if store.expiration is None else store.expiration.total_seconds() / 3600
            ),
            messages_per_minute=chat.rate_limit.per_minute if chat.rate_limit else None,
            auto_thread=services.auto_thread,
            runs_per_message=chat.limits.max_tool_calls,
            run_seconds_per_message=chat.limits.max_sandbox_seconds,
            upload_mb_per_message=chat.limits.max_upload_bytes / 1024**2,
        )
        await self._say(interaction, help_text(limits))

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
            *([f"Engine: {status.engine_problem}"] if status.engine_problem else []),
            *(f"{key}: {value}" for key, value in policy.items()),
        ]
        await self._say(interaction, "```\n" + "\n".join(lines) + "\n```")
