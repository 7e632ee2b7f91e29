"""What the bot's extensions work with, built by app/wiring.py and handed to the bot."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.bot.access import AccessPolicy
from app.chat import ChatService
from app.files import FileStore
from app.sandbox import SandboxRunner


@dataclass
class BotServices:
    chat: ChatService
    store: FileStore
    runner: SandboxRunner
    admin_ids: frozenset[int] = frozenset()
    access: AccessPolicy = field(default_factory=AccessPolicy)
    """Who may use the bot where; open to everyone unless the ALLOWED_* settings say."""
    auto_thread: bool = False
    """CHAT_AUTO_THREAD: a mention in a server channel opens a thread for the conversation."""
