"""Daily budgets per user (UTC day): model tokens, estimated model cost, sandbox seconds.

Before a model request or a run, its expected amount is reserved with an atomic check-and-add
in the store (`ChatRecords.add_daily`: MongoDB find_one_and_update conditioned on the limit, a
SQLite transaction), so concurrent turns of one user, in one process or several sharing the
store, never together pass a limit. After it, the reservation is replaced by what was really
used. Without limits the same bookkeeping runs, so /usage can show what was used today.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from app.chat.messages import budget_refusal
from app.chat.records import ChatRecords, DailyAmounts, DailyLimits, RecordsUnavailable

MIN_RUN_SECONDS = 1.0
"""A run is refused when less than this is left: it could not even start its code."""
RESERVE_ATTEMPTS = 5
BUDGET_UNCHECKED = (
    "Today's budget cannot be checked right now (the database is unavailable). Try again in a "
    "minute."
)
log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Reservation:
    user_id: str
    day: str
    amounts: DailyAmounts


@dataclass(frozen=True)
class BudgetStatus:
    used: DailyAmounts
    limits: DailyLimits
    resets_at: datetime

    def left(self, kind: str) -> float | None:
        limit = getattr(self.limits, kind)
        return None if limit is None else max(limit - getattr(self.used, kind), 0)

    def exhausted(self, kinds: tuple[str, ...] = ("tokens", "cost", "seconds")) -> str | None:
        """The first of `kinds` with nothing left ("tokens", "cost", "seconds"), or None."""
        for kind in kinds:
            left = self.left(kind)
            if left is not None and left <= (MIN_RUN_SECONDS if kind == "seconds" else 0):
                return kind
        return None


class DailyBudget:
    def __init__(
        self,
        records: ChatRecords,
        limits: DailyLimits,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.records = records
        self.limits = limits
        self.clock = clock

    def day(self) -> str:
        return self.clock().astimezone(UTC).date().isoformat()

    def resets_at(self) -> datetime:
        today = self.clock().astimezone(UTC).date()
        return datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)

    async def status(self, user_id: str) -> BudgetStatus:
        used = await self.records.daily_usage(user_id, self.day())
        return BudgetStatus(used, self.limits, self.resets_at())

    def refusal(self, status: BudgetStatus, kind: str) -> str:
        """The sentence for a user over the `kind` budget, with when it resets."""
        limit = getattr(self.limits, kind)
        return budget_refusal(kind, limit, status.left(kind) or 0, status.resets_at, self.clock())

    async def turn_refusal(self, user_id: str) -> str | None:
        """Why a turn cannot call the model at all today (tokens or cost used up), or None."""
        if self.limits.tokens is None and self.limits.cost is None:
            return None
        try:
            status = await self.status(user_id)
        except RecordsUnavailable:
            return BUDGET_UNCHECKED
        kind = status.exhausted(("tokens", "cost"))
        return None if kind is None else self.refusal(status, kind)

    async def request_refusal(self, user_id: str, tokens: int, cost: float) -> str:
        """Why a request of this estimate was refused."""
        status = await self.status(user_id)
        limit = self.limits.tokens
        over_tokens = limit is not None and status.used.tokens + tokens > limit
        return self.refusal(status, "tokens" if over_tokens else "cost")

    async def run_allowance(self, user_id: str, wanted: float) -> tuple[Reservation | None, str]:
        """The reservation a run of up to `wanted` seconds gets (its granted seconds are the
        run's time limit), and a sentence for the user when it is refused or cut short."""
        reservation = await self.reserve_run(user_id, wanted)
        if reservation is None:
            return None, self.refusal(await self.status(user_id), "seconds")
        granted = reservation.amounts.seconds
        if granted < wanted:
            return reservation, (
                f"Only {granted:.0f} s of today's code execution time were left, so the run "
                "was limited to that."
            )
        return reservation, ""

    async def reserve_request(self, user_id: str, tokens: int, cost: float) -> Reservation | None:
        """Reserve a model request's estimated input; None when it does not fit what is left."""
        wanted = DailyAmounts(tokens=max(tokens, 0), cost=max(cost, 0.0))
        limits = DailyLimits(tokens=self.limits.tokens, cost=self.limits.cost)
        return await self._reserve(user_id, wanted, limits)

    async def reserve_run(self, user_id: str, seconds: float) -> Reservation | None:
        """Reserve a run's time limit, cut to the seconds left today; None when less than
        MIN_RUN_SECONDS is left. The granted seconds are the reservation's `amounts.seconds`."""
        day = self.day()
        limit = self.limits.seconds
        for _ in range(RESERVE_ATTEMPTS):
            if limit is None:
                grant = seconds
            else:
                used = await self.records.daily_usage(user_id, day)
                grant = min(seconds, limit - used.seconds)
                if grant < MIN_RUN_SECONDS:
                    return None
            reservation = await self._reserve(
                user_id, DailyAmounts(seconds=grant), DailyLimits(seconds=limit), day
            )
            if reservation is not None:
                return reservation
            # Another turn of this user reserved in between: look again at what is left.
        return None

    async def settle(self, reservation: Reservation | None, used: DailyAmounts) -> None:
        """Replace a reservation with what was really used (may end a little over a limit)."""
        if reservation is None:
            return
        held = reservation.amounts
        delta = DailyAmounts(
            tokens=used.tokens - held.tokens,
            cost=used.cost - held.cost,
            seconds=used.seconds - held.seconds,
        )
        if delta != DailyAmounts():
            try:
                await self.records.add_daily(reservation.user_id, reservation.day, delta, None)
            except RecordsUnavailable as exc:  # the reservation stays counted: never under
                log.warning("budget not settled", error=str(exc)[:300])

    async def _reserve(
        self, user_id: str, wanted: DailyAmounts, limits: DailyLimits, day: str | None = None
    ) -> Reservation | None:
        day = day or self.day()
        try:
            added = await self.records.add_daily(
                user_id, day, wanted, limits if limits.any else None
            )
        except RecordsUnavailable as exc:
            if limits.any:
                raise  # a limit that cannot be checked is not passed
            log.warning("usage not counted", error=str(exc)[:300])
            return Reservation(user_id, day, wanted)
        return None if added is None else Reservation(user_id, day, wanted)
