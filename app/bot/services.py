"""What the bot's extensions work with, built by app/wiring.py and handed to the bot."""

from __future__ import annotations

from dataclasses import dataclass

from app.chat import ChatService
from app.files import FileStore
from app.sandbox import SandboxRunner


@dataclass
class BotServices:
    chat: ChatService
    store: FileStore
    runner: SandboxRunner
    admin_ids: frozenset[int] = frozenset()
    link_domains: tuple[str, ...] = ()
    """CHAT_LINK_DOMAINS: links to these stay clickable in the bot's messages (app/bot/sending)."""
