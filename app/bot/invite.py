"""The invite URL the bot logs at start: the scopes and the permissions it needs, nothing more."""

from __future__ import annotations

import discord

SCOPES = ("bot", "applications.commands")


def needed_permissions() -> discord.Permissions:
    """Read and answer in channels and their threads, with files and link previews, and open
    a thread per conversation (CHAT_AUTO_THREAD)."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        attach_files=True,
        embed_links=True,
        read_message_history=True,
        create_public_threads=True,
    )


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=needed_permissions(), scopes=SCOPES)
