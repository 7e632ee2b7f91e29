"""`python -m app bot`: start the Discord bot (the image's default command)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import discord
import structlog

from app.bot import BotServices, CodeInterpreterBot
from app.bot.client import heartbeat_is_fresh
from app.bot.startup import startup_problems
from app.files import StorageUnavailable
from app.logs import configure_logging
from app.sandboxd import SandboxClient
from app.wiring import Components

log = structlog.get_logger(__name__)


def add_parser(sub) -> None:
    parser = sub.add_parser("bot", help="start the Discord bot")
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 when a running bot is connected (for container healthchecks)",
    )
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace, parts: Components) -> int:
    if args.healthcheck:
        return 0 if heartbeat_is_fresh() else 1
    configure_logging(parts.settings.log_level or "INFO", parts.settings.log_format)
    return asyncio.run(_main(parts))


async def _main(parts: Components) -> int:
    settings = parts.settings
    sandbox = parts.sandbox
    if isinstance(sandbox, SandboxClient):
        problems = await startup_problems(settings, None, parts.records, service=sandbox)
    else:
        problems = await startup_problems(settings, parts.docker, parts.records)
    store = None
    if not problems:  # the store already named once if it is the problem
        try:
            store = await parts.file_store()
        except StorageUnavailable as exc:
            problems.append(str(exc))
    if problems or store is None:
        for line in problems:
            print(f"cannot start: {line}", file=sys.stderr)
        await parts.close()
        return 2
    log.info("store in use", store=parts.store_description)
    records = parts.records
    if hasattr(records, "ensure_indexes"):
        await records.ensure_indexes()
    # The runner reaps leftovers of dead processes and fills the warm pool; a client checks the
    # service.
    await sandbox.start()
    chat = parts.chat_service(store)
    cleanup = asyncio.create_task(
        parts.cleanup(store).run_periodically(settings.cleanup_interval_minutes)
    )
    bot = CodeInterpreterBot(
        BotServices(
            chat,
            store,
            sandbox,
            settings.admin_ids,
            access=parts.access(),
            link_domains=settings.link_domains,
            auto_thread=settings.chat_auto_thread,
        ),
        commands_hash=parts.layout.commands_hash,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    try:
        assert settings.discord_token is not None  # checked by startup_problems
        await bot.start(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        print("cannot start: Discord rejected DISCORD_TOKEN", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print(
            "cannot start: enable the Message Content Intent for the bot in the Discord "
            "developer portal",
            file=sys.stderr,
        )
        return 2
    finally:
        cleanup.cancel()
        if not bot.is_closed():
            await bot.close()
        await chat.client.close()
        await parts.close()  # the warm pool's containers, pending removals, engine, MongoDB
    return 0
