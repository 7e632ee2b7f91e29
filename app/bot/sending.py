"""How the bot sends: every message, edit and interaction reply goes through here.

Never a ping (`allowed_mentions` none), embeds as SUPPRESS_EMBEDS says (one place to tighten),
replies that do not fail when the message they answer was deleted meanwhile
(`fail_if_not_exists=False`), and the upload limits of where the bot sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

NO_MENTIONS = discord.AllowedMentions.none()
SUPPRESS_EMBEDS = False
_UNCHANGED: Any = discord.utils.MISSING


def upload_limit(guild: discord.Guild | None) -> int:
    """The bytes one attachment may have here: the guild's limit (boosts raise it), else DMs'."""
    if guild is None:
        return discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    return guild.filesize_limit


def request_limit(guild: discord.Guild | None) -> int:
    """The bytes all the files of one message may have together: today the same figure."""
    return upload_limit(guild)


async def send(
    channel: discord.abc.Messageable,
    content: str | None = None,
    *,
    reply_to: discord.Message | discord.PartialMessage | None = None,
    files: Sequence[discord.File] = (),
    view: discord.ui.View | None = None,
) -> discord.Message:
    options: dict[str, Any] = {
        "allowed_mentions": NO_MENTIONS,
        "suppress_embeds": SUPPRESS_EMBEDS,
    }
    if reply_to is not None:
        options["reference"] = reply_to.to_reference(fail_if_not_exists=False)
        options["mention_author"] = False
    if files:
        options["files"] = list(files)
    if view is not None:
        options["view"] = view
    return await channel.send(content or None, **options)


async def edit(
    message: discord.Message, content: str, *, view: discord.ui.View | None = _UNCHANGED
) -> discord.Message:
    """Edit the text (and the buttons, when `view` is given; None removes them)."""
    options: dict[str, Any] = {
        "content": content,
        "allowed_mentions": NO_MENTIONS,
        "suppress": SUPPRESS_EMBEDS,
    }
    if view is not _UNCHANGED:
        options["view"] = view
    return await message.edit(**options)


async def respond(
    interaction: discord.Interaction,
    content: str,
    *,
    ephemeral: bool = True,
    files: Sequence[discord.File] = (),
    view: discord.ui.View | None = None,
) -> None:
    """Answer an interaction (privately by default)."""
    options: dict[str, Any] = {
        "ephemeral": ephemeral,
        "allowed_mentions": NO_MENTIONS,
        "suppress_embeds": SUPPRESS_EMBEDS,
    }
    if files:
        options["files"] = list(files)
    if view is not None:
        options["view"] = view
    if interaction.response.is_done():
        await interaction.followup.send(content, **options)
    else:
        await interaction.response.send_message(content, **options)
