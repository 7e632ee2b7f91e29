"""`python -m app bot`: start the Discord bot (the image's default command)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import discord
import structlog

from app.bot.client import BotServices, CodeInterpreterBot, heartbeat_is_fresh
from app.bot.startup import startup_problems
from app.chat.wiring import WiringError, build_chat_service, open_file_store, open_records
from app.config import Settings
from app.files import CleanupService
from app.logs import configure_logging
from app.sandbox import create_runner

log = structlog.get_logger(__name__)


def add_parser(sub) -> None:
    parser = sub.add_parser("bot", help="start the Discord bot")
    parser.add_argument("--healthcheck", action="store_true",
                        help="exit 0 when a running bot is connected (for container healthchecks)")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, settings: Settings) -> int:
    if args.healthcheck:
        return 0 if heartbeat_is_fresh() else 1
    configure_logging(settings.log_level or "INFO", settings.log_format)
    return asyncio.run(_main(settings))


async def _main(settings: Settings) -> int:
    runner = create_runner(settings)
    records = open_records(settings)
    problems = await startup_problems(settings, runner.engine, records)
    if not problems:  # MongoDB already named once if it is the problem
        try:
            files = await open_file_store(settings)
        except WiringError as exc:
            problems.append(str(exc))
    if problems:
        for line in problems:
            print(f"cannot start: {line}", file=sys.stderr)
        runner.engine.close()
        return 2
    if hasattr(records, "ensure_indexes"):
        await records.ensure_indexes()
    await runner.start()  # reaps leftovers of dead processes, then fills the warm pool
    chat = build_chat_service(settings, runner, files, records)
    cleanup_service = CleanupService(
        files.store, runner, package_cache_days=settings.package_cache_days
    )
    cleanup = asyncio.create_task(
        cleanup_service.run_periodically(settings.cleanup_interval_minutes)
    )
    bot = CodeInterpreterBot(BotServices(chat, files.store, runner, settings.admin_ids))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    try:
        await bot.start(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        print("cannot start: Discord rejected DISCORD_TOKEN", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("cannot start: enable the Message Content Intent for the bot in the Discord "
              "developer portal", file=sys.stderr)
        return 2
    finally:
        cleanup.cancel()
        if not bot.is_closed():
            await bot.close()
        await chat.client.close()
        await runner.close()  # the warm pool's containers and pending removals
        runner.engine.close()
    return 0
