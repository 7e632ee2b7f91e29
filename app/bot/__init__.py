"""The Discord bot: thin extensions over ChatService, the file store and the sandbox runner."""

from app.bot.client import CodeInterpreterBot
from app.bot.services import BotServices

__all__ = ["BotServices", "CodeInterpreterBot"]
