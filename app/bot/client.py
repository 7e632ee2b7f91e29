"""The discord.py client: services come in by constructor; extensions read them off the bot."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from app.bot.access import NOT_ENABLED
from app.bot.invite import invite_url
from app.bot.sending import NO_MENTIONS, allow_link_domains
from app.bot.services import BotServices
from app.bot.turns import LiveTurns

log = structlog.get_logger(__name__)
HEARTBEAT_FILE = Path("/tmp/codeinterp-bot.alive")
HEARTBEAT_SECONDS = 30
EXTENSIONS = (
    "app.bot.exts.chat",
    "app.bot.exts.answers",
    "app.bot.exts.files",
    "app.bot.exts.commands",
)


def bot_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: enable "Message Content Intent" for the bot
    return intents


class AccessTree(app_commands.CommandTree):
    """The slash-command tree: every command, in every extension, checks the access rule first
    (app/bot/access.py) and answers "not enabled here" privately where the bot is not."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        access = getattr(self.client, "services", None)
        if access is None or access.access.allows_interaction(interaction):
            return True
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await interaction.response.send_message(
                NOT_ENABLED, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
        return False


class CodeInterpreterBot(commands.Bot):
    def __init__(
        self,
        services: BotServices,
        heartbeat_file: Path = HEARTBEAT_FILE,
        commands_hash: Path | None = None,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=bot_intents(),
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            tree_cls=AccessTree,
        )
        self.services = services
        allow_link_domains(services.link_domains)
        self.heartbeat_file = heartbeat_file
        self.commands_hash = commands_hash
        """Where the hash of the last synced slash commands is kept (DATA_DIR/state/)."""
        self.turns: set[asyncio.Task] = set()
        self.live_turns = LiveTurns(self.track)
        """Turns and re-runs in flight with a live reply, by id: what Stop cancels."""
        self._heartbeat: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        if self.application_id is not None:
            log.info("invite the bot with", url=invite_url(self.application_id))
        self._heartbeat = asyncio.create_task(self._beat())

    def commands_digest(self) -> str:
        """A hash of the slash commands as Discord is sent them, and of the application."""
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        text = json.dumps({"application": self.application_id, "commands": payload}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    async def sync_commands(self) -> bool:
        """Sync the slash commands only when their definitions changed since the last sync:
        Discord rate-limits syncs, and an unchanged tree needs none at each restart."""
        digest = self.commands_digest()
        path = self.commands_hash
        if path is not None:
            try:
                if path.read_text().strip() == digest:
                    log.info("slash commands unchanged since the last sync")
                    return False
            except OSError:
                pass  # never synced from here (or unreadable): sync
        await self.tree.sync()
        log.info("slash commands synced", commands=len(self.tree.get_commands()))
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".part")
                partial.write_text(digest + "\n")
                os.replace(partial, path)
            except OSError as exc:  # next start syncs again; nothing else depends on it
                log.warning("slash command hash not saved", error=str(exc))
        return True

    async def on_command_error(self, context: commands.Context, error: Exception) -> None:
        # The prefix is the bot's mention and there are no prefix commands: "@bot hello" is a
        # chat message for the chat extension, not an unknown command worth a traceback.
        if isinstance(error, commands.CommandNotFound):
            return
        await super().on_command_error(context, error)  # type: ignore[arg-type]

    def track(self, task: asyncio.Task) -> None:
        """Turns in flight: cancelled on shutdown so their sandboxes are removed."""
        self.turns.add(task)
        task.add_done_callback(self.turns.discard)

    async def on_ready(self) -> None:
        log.info("bot connected", user=str(self.user), guilds=len(self.guilds))

    async def _beat(self) -> None:
        while True:
            if self.is_ready() and not self.is_closed():
                self.heartbeat_file.write_text(str(time.time()))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def close(self) -> None:
        log.info("shutting down", turns_in_flight=len(self.turns))
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self.heartbeat_file.unlink(missing_ok=True)
        pending = [t for t in self.turns if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()  # the runner removes the container; the chat saves the turn so far
        if pending:
            await asyncio.wait(pending, timeout=30)
        await super().close()


def heartbeat_is_fresh(path: Path = HEARTBEAT_FILE, max_age: float = 3 * HEARTBEAT_SECONDS) -> bool:
    try:
        return time.time() - float(path.read_text()) < max_age
    except (OSError, ValueError):
        return False
