"""The one live reply of a turn: its messages edited in place, about once a second at most.

EditScheduler is the pure part (when to edit, with what): the newest content wins, unchanged
content is never sent again, and edits are at least `interval` apart (Discord allows about five
edits per five seconds in a channel). LiveReply keeps the answer's messages in step with the
text: the first is the head (the reply to the user), text past 2000 characters continues in
follow-up messages that reply to the head, and the buttons sit on the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

import discord
import structlog

from app.bot.replies import split_message
from app.bot.sending import edit, send

log = structlog.get_logger(__name__)
EDIT_INTERVAL = 1.0


class EditScheduler:
    def __init__(
        self, interval: float = EDIT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._pending: str | None = None
        self._shown: str | None = None
        self._last = -math.inf

    def offer(self, content: str) -> None:
        """The content the message should show now (replaces anything not yet shown)."""
        self._pending = None if content == self._shown else content

    def shown(self, content: str) -> None:
        """The message shows `content` now (sent or edited outside the schedule)."""
        self._shown, self._pending, self._last = content, None, self.clock()

    def wait_time(self) -> float | None:
        """Seconds until the pending content may be shown; None when nothing is pending."""
        if self._pending is None:
            return None
        return max(0.0, self._last + self.interval - self.clock())

    def take(self) -> str | None:
        """The content to show now, if any is pending and the interval has passed."""
        if self.wait_time() != 0.0:
            return None
        content = self._pending
        assert content is not None
        self.shown(content)
        return content


class LiveReply:
    """The messages of one answer. `update(text)` while it goes, `finish(text, view)` at the end."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        head: discord.Message,
        head_text: str,
        *,
        running_view: discord.ui.View | None = None,
        scheduler: EditScheduler | None = None,
    ) -> None:
        self.channel = channel
        self.messages: list[discord.Message] = [head]
        self._shown: list[tuple[str, discord.ui.View | None]] = [(head_text, running_view)]
        self.running_view = running_view
        self.scheduler = scheduler or EditScheduler()
        self.scheduler.shown(head_text)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def head(self) -> discord.Message:
        return self.messages[0]

    def update(self, text: str) -> None:
        self.scheduler.offer(text)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._edits())

    async def finish(self, text: str, view: discord.ui.View | None) -> list[discord.Message]:
        """Show the final text now, `view` on its last message; returns the messages."""
        await self.stop()
        self.scheduler.shown(text)
        await self._show(text, final_view=view)
        return list(self.messages)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _edits(self) -> None:
        while True:
            wait = self.scheduler.wait_time()
            if wait is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            content = self.scheduler.take()
            if content is not None:
                await self._show(content, final_view=None, final=False)

    async def _show(
        self, text: str, *, final_view: discord.ui.View | None, final: bool = True
    ) -> None:
        chunks = split_message(text)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            if final:
                view = final_view if last else None
            else:
                view = self.running_view if index == 0 else None
            if index < len(self.messages):
                if self._shown[index] != (chunk, view):
                    await self._edit(index, chunk, view, must=final)
            elif not await self._send(chunk, view, must=final):
                return  # a live update that did not get through: the next one tries again
        for extra in self.messages[len(chunks) :]:
            with contextlib.suppress(discord.HTTPException):
                await extra.delete()
        del self.messages[len(chunks) :]
        del self._shown[len(chunks) :]

    async def _edit(self, index: int, chunk: str, view, *, must: bool) -> None:
        try:
            await edit(self.messages[index], chunk, view=view)
            self._shown[index] = (chunk, view)
        except discord.NotFound:
            # Deleted meanwhile: the text goes in a new message rather than nowhere.
            self.messages[index] = await send(self.channel, chunk, reply_to=self.head, view=view)
            self._shown[index] = (chunk, view)
        except discord.HTTPException as exc:
            log.warning("live reply not edited", status=exc.status, final=must)
            if must:
                self.messages[index] = await send(
                    self.channel, chunk, reply_to=self.head, view=view
                )
                self._shown[index] = (chunk, view)

    async def _send(self, chunk: str, view, *, must: bool) -> bool:
        try:
            message = await send(self.channel, chunk, reply_to=self.head, view=view)
        except discord.HTTPException as exc:
            log.warning("live reply continuation not sent", status=exc.status, final=must)
            if must:
                raise
            return False
        self.messages.append(message)
        self._shown.append((chunk, view))
        return True
