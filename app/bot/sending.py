"""How the bot sends: every message, edit and interaction reply goes through here.

Never a ping (`allowed_mentions` none), never a link preview (embeds suppressed), links inert
unless their domain is allowed, replies that do not fail when the message they answer was
deleted meanwhile (`fail_if_not_exists=False`), and the upload limits of where the bot sends.

The model's text can carry what a prompt injection put there (a file, a page of output): a link
whose query holds the user's data is fetched by Discord's preview service as soon as it is
posted, and clicked by a user who trusts the bot. So every message goes out with embeds
suppressed, and `inert_links` rewrites the text first: a link to an allowed domain
(CHAT_LINK_DOMAINS, subdomains included, set once with `allow_link_domains`) stays clickable as
`<url>`; any other becomes inline code, which Discord neither links nor previews; a masked link
`[text](url)` is shown as its text and its address, so nothing hides where it points. Code blocks
and inline code are left alone (Discord does not link inside them). The rewrite is idempotent,
so the edits of a live reply can send the same text again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import discord

NO_MENTIONS = discord.AllowedMentions.none()
SUPPRESS_EMBEDS = True
_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`)", re.S)
_MASKED = re.compile(r"\[([^\[\]\n]*)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
# `<https://...>` (a link without a preview), but not Discord's own `<t:...>`, `<@id>`, `<#id>`.
_ANGLED = re.compile(r"<((?:[a-zA-Z][a-zA-Z0-9+.-]*://|mailto:)[^\s<>]+)>")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>]+|\bmailto:[^\s<>]+")
_TRAILING = ".,:;!?*_~'\"|"
_HOST = re.compile(r"[a-z0-9.-]+")
_link_domains: tuple[str, ...] = ()
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
    return await channel.send(inert_links(content or "", _link_domains) or None, **options)


async def edit(
    message: discord.Message, content: str, *, view: discord.ui.View | None = _UNCHANGED
) -> discord.Message:
    """Edit the text (and the buttons, when `view` is given; None removes them)."""
    options: dict[str, Any] = {
        "content": inert_links(content, _link_domains),
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
    content = inert_links(content, _link_domains)
    if interaction.response.is_done():
        await interaction.followup.send(content, **options)
    else:
        await interaction.response.send_message(content, **options)


def allow_link_domains(domains: Sequence[str]) -> None:
    """CHAT_LINK_DOMAINS, once at start: links to these (and subdomains) stay clickable."""
    global _link_domains
    _link_domains = tuple(d.lower().rstrip(".") for d in domains)


def link_allowed(url: str, domains: Sequence[str]) -> bool:
    """An http(s) link to one of `domains` or a subdomain, with nothing that could make a
    browser or Discord read another host into it (user info, backslashes, odd characters)."""
    if not domains or "\\" in url or "@" in url.split("?", 1)[0]:
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not _HOST.fullmatch(host):
        return False
    return any(host == d or host.endswith("." + d) for d in domains)


def _shown(url: str, domains: Sequence[str]) -> str:
    url = url.replace("`", "")
    return f"<{url}>" if link_allowed(url, domains) else f"`{url}`"


def _inert_prose(text: str, domains: Sequence[str]) -> str:
    text = _MASKED.sub(lambda m: f"{m.group(1).strip()} ({m.group(2)})", text)
    text = _ANGLED.sub(lambda m: m.group(1), text)

    def url(match: re.Match) -> str:
        found = match.group(0)
        core = found.rstrip(_TRAILING)
        while core.endswith(")") and core.count(")") > core.count("("):
            core = core[:-1].rstrip(_TRAILING)  # a bracket closing the sentence, not the link
        return _shown(core, domains) + found[len(core) :]

    return _URL.sub(url, text)


def inert_links(text: str, domains: Sequence[str] = ()) -> str:
    """`text` with every link inert but those to `domains` (see the module doc)."""
    pieces = _CODE.split(text)
    return "".join(p if i % 2 else _inert_prose(p, domains) for i, p in enumerate(pieces))
