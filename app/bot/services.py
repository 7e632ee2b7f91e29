"""What the bot's extensions work with, built by app/wiring.py and handed to the bot."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.bot.access import AccessPolicy
from app.chat import ChatService
from app.files import FileStore
from app.sandbox import SandboxService


@dataclass
class BotServices:
    chat: ChatService
    store: FileStore
    runner: SandboxService
    """The sandbox: the in-process runner, or a client of the sandbox service."""
    admin_ids: frozenset[int] = frozenset()
    access: AccessPolicy = field(default_factory=AccessPolicy)
    """Who may use the bot where; open to everyone unless the ALLOWED_* settings say."""
    link_domains: tuple[str, ...] = ()
    """CHAT_LINK_DOMAINS: links to these stay clickable in the bot's messages (app/bot/sending)."""
    auto_thread: bool = False
    """CHAT_AUTO_THREAD: a mention in a server channel opens a thread for the conversation."""
