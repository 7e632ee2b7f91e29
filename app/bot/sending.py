"""How the bot sends: never a ping, and within the upload limit of where it sends."""

from __future__ import annotations

import discord

NO_MENTIONS = discord.AllowedMentions.none()


def upload_limit(guild: discord.Guild | None) -> int:
    """The bytes one attachment may have here: the guild's limit (boosts raise it), else DMs'."""
    if guild is None:
        return discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    return guild.filesize_limit
