"""Who may use the bot, where: ALLOWED_GUILD_IDS, ALLOWED_CHANNEL_IDS, ALLOWED_ROLE_IDS, ALLOW_DMS.

One rule for messages and slash commands. Empty lists restrict nothing; all that are set must
hold. A thread (a forum post too) counts as its parent channel. The lists apply to servers; DMs
are ALLOW_DMS alone. Elsewhere the chat extension ignores messages, and the command tree answers
every slash command privately with NOT_ENABLED (AccessTree in app/bot/client.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_ENABLED = "The bot is not enabled here."


@dataclass(frozen=True)
class AccessPolicy:
    guilds: frozenset[int] = frozenset()
    channels: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    allow_dms: bool = True

    def allows(self, guild_id: int | None, channel: Any, member: Any) -> bool:
        """Whether `member` may use the bot in `channel` of guild `guild_id` (None: a DM)."""
        if guild_id is None:
            return self.allow_dms
        if self.guilds and guild_id not in self.guilds:
            return False
        if self.channels and channel_of(channel) not in self.channels:
            return False
        if self.roles:
            held = {role.id for role in getattr(member, "roles", None) or ()}
            if not held & self.roles:
                return False
        return True

    def allows_message(self, message: Any) -> bool:
        guild = message.guild
        return self.allows(guild.id if guild else None, message.channel, message.author)

    def allows_interaction(self, interaction: Any) -> bool:
        channel = interaction.channel
        if channel is None:  # not cached: only the id is known, and a thread's parent is not
            channel = _ChannelId(interaction.channel_id)
        return self.allows(interaction.guild_id, channel, interaction.user)


def channel_of(channel: Any) -> int | None:
    """The channel id the allow-list checks: a thread's parent, else the channel itself."""
    parent = getattr(channel, "parent_id", None)
    return parent if parent is not None else getattr(channel, "id", None)


@dataclass(frozen=True)
class _ChannelId:
    id: int | None
