"""The discord.py client: services come in by constructor; extensions read them off the bot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import discord
import structlog
from discord.ext import commands

from app.bot.sending import NO_MENTIONS
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


class CodeInterpreterBot(commands.Bot):
    def __init__(self, services: BotServices, heartbeat_file: Path = HEARTBEAT_FILE) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=bot_intents(),
            allowed_mentions=NO_MENTIONS,
            help_command=None,
        )
        self.services = services
        self.heartbeat_file = heartbeat_file
        self.turns: set[asyncio.Task] = set()
        self.live_turns = LiveTurns(self.track)
        """Turns and re-runs in flight with a live reply, by id: what Stop cancels."""
        self._heartbeat: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.tree.sync()
        self._heartbeat = asyncio.create_task(self._beat())

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
