"""The end of a turn in Discord: the final text in the live reply first, then the files.

Nothing of the answer is lost to a refused upload: files go in groups Discord accepts (ten, and
within the request limit); a group that is still refused (HTTP 413 or any other HTTPException)
is retried file by file, and a file that fails alone is named by its stored id instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import discord
import structlog

from app.bot.attachments import Attachment, group_attachments, unattached_note
from app.bot.live import LiveReply
from app.bot.replies import plan_answer
from app.bot.sending import request_limit, send, upload_limit
from app.chat import ChatAnswer

log = structlog.get_logger(__name__)


async def deliver(
    live: LiveReply,
    answer: ChatAnswer,
    guild: discord.Guild | None,
    view: discord.ui.View | None,
) -> list[discord.Message]:
    """Finish the live reply with the answer (buttons on its last text message), then attach
    the files below it; returns the text messages."""
    plan = plan_answer(answer, upload_limit(guild))
    messages = await live.finish(plan.text, view)
    failed = await send_attachments(live.channel, live.head, plan.attachments, request_limit(guild))
    if failed:
        await send(live.channel, unattached_note(failed), reply_to=live.head)
    return messages


async def send_attachments(
    channel: discord.abc.Messageable,
    head: discord.Message,
    attachments: Sequence[Attachment],
    limit: int,
) -> list[Attachment]:
    """Send the files in accepted groups, replying to `head`; returns those that failed."""
    failed: list[Attachment] = []
    for group in group_attachments(attachments, limit):
        if await _try_send(channel, head, group):
            continue
        if len(group) == 1:
            failed.extend(group)
            continue
        for attachment in group:  # which one was it? each alone, the others still go
            if not await _try_send(channel, head, [attachment]):
                failed.append(attachment)
    return failed


async def _try_send(
    channel: discord.abc.Messageable, head: discord.Message, group: Sequence[Attachment]
) -> bool:
    files: list[discord.File] = []
    try:
        files = [attachment.to_file() for attachment in group]
        await send(channel, reply_to=head, files=files)
        return True
    except discord.HTTPException as exc:
        log.warning("attachments refused", status=exc.status, files=len(group))
        return False
    except OSError as exc:  # the stored file went away meanwhile (expired, deleted)
        log.warning("attachment unreadable", error=type(exc).__name__)
        return False
    finally:
        for file in files:
            file.close()
