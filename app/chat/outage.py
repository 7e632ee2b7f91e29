"""What a turn does when the store (MongoDB, or the SQLite file) fails in the middle of it: the
answer is still delivered, and the user is told what could not be read or saved. The store's
own modules turn driver errors into RecordsUnavailable; nothing here retries."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import structlog

from app.chat.records import RecordsUnavailable

T = TypeVar("T")
log = structlog.get_logger(__name__)

HISTORY_UNREAD = (
    "The conversation so far could not be read (the database is unavailable): this answer "
    "does not know the earlier messages."
)
TURN_NOT_SAVED = (
    "This exchange could not be saved (the database is unavailable): the next message will not "
    "remember it."
)
USAGE_NOT_RECORDED = "The usage of this answer could not be recorded (the database is unavailable)."
STOPPED = (
    "The answer stopped here: the database became unavailable, so today's budget cannot be "
    "checked. Try again in a minute."
)


def tell(answer, notice: str) -> None:
    if notice not in answer.notices:
        answer.notices.append(notice)


async def or_tell(work: Awaitable[T], answer, notice: str, fallback: T) -> T:
    """`work`'s result; when the store fails, `fallback` and `notice` on the answer."""
    try:
        return await work
    except RecordsUnavailable as exc:
        log.warning("store unavailable mid-turn", error=str(exc)[:300], notice=notice[:60])
        tell(answer, notice)
        return fallback


async def or_default(work: Awaitable[T], fallback: T) -> T:
    """`work`'s result, or `fallback` when the store fails (a preference: the default is fine)."""
    try:
        return await work
    except RecordsUnavailable as exc:
        log.warning("store unavailable; default used", error=str(exc)[:300])
        return fallback


def stopped(answer, exc: RecordsUnavailable) -> None:
    """The store failed where the turn cannot go on (a budget check): keep what was made."""
    log.warning("turn stopped: store unavailable", error=str(exc)[:300])
    if answer.runs or answer.text:
        tell(answer, STOPPED)
    else:
        answer.error = STOPPED
