"""The Discord bot: thin cogs over ChatService, the file store and the sandbox runner."""

from app.bot.client import BotServices, CodeInterpreterBot

__all__ = ["BotServices", "CodeInterpreterBot"]
