"""Turns and re-runs in flight, each with its live reply and its Stop.

`LiveTurns.run` sends the live reply at once (with Stop), lets the chat service work with a
TurnDisplay observing it, and delivers the answer. Stop cancels the work: the runner removes
the container, the chat service saves the turn's complete part, and what the user already saw
stays, marked "Stopped.". A shutdown cancels it too; then the reply says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import discord
import structlog

from app.bot.buttons import running_view
from app.bot.delivery import deliver
from app.bot.display import TurnDisplay
from app.bot.live import LiveReply
from app.bot.replies import plan_answer
from app.bot.sending import send, upload_limit
from app.chat import ChatAnswer, TurnObserver

log = structlog.get_logger(__name__)
FAILURE_REPLY = "Something went wrong on my side. Please try again."
INTERRUPTED = "The bot was restarted while this was running; ask again, or use Re-run."

Work = Callable[[TurnObserver], Coroutine[Any, Any, ChatAnswer]]
FinalView = Callable[[ChatAnswer, int], discord.ui.View | None]


class LiveTurns:
    def __init__(self, track: Callable[[asyncio.Task], None] = lambda task: None) -> None:
        self.track = track
        self._tasks: dict[str, asyncio.Task] = {}
        self._stopped: set[str] = set()

    def is_running(self, key: str) -> bool:
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def stop(self, key: str) -> bool:
        """Cancel a turn or re-run in flight; False when it is not (any more)."""
        if not self.is_running(key):
            return False
        self._stopped.add(key)
        self._tasks[key].cancel()
        return True

    async def run(
        self,
        channel: discord.abc.Messageable,
        *,
        reply_to: discord.Message | None,
        user_id: int,
        key: str,
        idle: str,
        work: Work,
        final_view: FinalView,
        guild: discord.Guild | None,
        waiting: Callable[[], int] = lambda: 0,
    ) -> ChatAnswer:
        stop_view = running_view(user_id, key)
        head = await send(channel, idle, reply_to=reply_to, view=stop_view)
        live = LiveReply(channel, head, idle, running_view=stop_view)
        display = TurnDisplay(live, waiting, idle=idle)
        task: asyncio.Task[ChatAnswer] = asyncio.create_task(work(display))
        self.track(task)
        self._tasks[key] = task
        try:
            try:
                answer = await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                shutdown = current is not None and current.cancelling()
                if key not in self._stopped or shutdown:
                    await self._interrupted(live, display, guild)
                    raise
                answer = display.partial_answer()
            except Exception:
                log.exception("turn failed")
                answer = display.partial_answer()
                answer.notices.clear()
                answer.error = FAILURE_REPLY
        finally:
            self._tasks.pop(key, None)
            self._stopped.discard(key)
            await display.close()
        await deliver(live, answer, guild, final_view(answer, head.id))
        return answer

    @staticmethod
    async def _interrupted(live: LiveReply, display: TurnDisplay, guild) -> None:
        """Shutdown: the reply says what happened instead of "Running code" forever."""
        text = plan_answer(display.partial_answer(INTERRUPTED), upload_limit(guild)).text
        try:
            await live.finish(text, None)
        except Exception as exc:  # the bot is closing; this is a courtesy
            log.warning("interrupted reply not updated", error=type(exc).__name__)
