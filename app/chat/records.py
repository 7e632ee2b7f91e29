"""Conversations, model choices and usage records: the repository protocol and its in-memory form.

A conversation is kept per (user, channel) as a list of turns; a turn has an id (the bot's
buttons name it), the Chat Completions messages it added (user message, tool calls and results,
answer), so trimming drops whole turns and never separates a tool call from its result, and the
ids of the tool calls that ran code, in run order (run N of a turn is what Re-run and Code name).
MongoDB storage is in `mongo.py`, the embedded SQLite storage in `sqlite.py`;
tests/unit/test_chat_records.py holds all three to one contract.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass
class Turn:
    messages: list[dict]
    id: str = ""
    """Empty for turns saved before turns had ids; nothing refers to those."""
    runs: list[str] = field(default_factory=list)
    """The tool call ids of the turn's code runs, in order: run N is runs[N - 1]."""

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "messages": list(self.messages), "runs": list(self.runs)}

    @classmethod
    def from_doc(cls, doc: Any) -> Turn:
        """A stored turn; a bare list of messages is the shape turns had before they had ids."""
        if isinstance(doc, list):
            return cls(messages=list(doc))
        return cls(
            messages=list(doc.get("messages", [])),
            id=str(doc.get("id", "")),
            runs=[str(call_id) for call_id in doc.get("runs", [])],
        )

    def copy(self) -> Turn:
        return Turn.from_doc(self.to_doc())


class RecordsUnavailable(RuntimeError):
    """The store cannot be reached; str() is a one-line reason without the URI."""


@dataclass(frozen=True)
class UsageRecord:
    user_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    cached_tokens: int = 0
    """Of prompt_tokens, how many the provider served from its prompt cache (priced lower)."""


@dataclass
class UsageTotal:
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0
    cached_tokens: int = 0

    def add(
        self, prompt: int, completion: int, cost: float | None, requests: int = 1, cached: int = 0
    ) -> None:
        self.requests += requests
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cached_tokens += cached
        self.cost = None if cost is None or self.cost is None else self.cost + cost


@dataclass(frozen=True)
class DailyAmounts:
    """What one user used (or holds reserved) on one UTC day."""

    tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class DailyLimits:
    """Per-user daily limits; None is unlimited."""

    tokens: int | None = None
    cost: float | None = None
    seconds: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.tokens, self.cost, self.seconds))


def fits(used: DailyAmounts, add: DailyAmounts, limits: DailyLimits | None) -> bool:
    """Whether adding `add` keeps every limited amount it increases within its limit."""
    if limits is None:
        return True
    for kind in ("tokens", "cost", "seconds"):
        limit, amount = getattr(limits, kind), getattr(add, kind)
        if limit is not None and amount > 0 and getattr(used, kind) + amount > limit:
            return False
    return True


class ChatRecords(Protocol):
    persistent: bool

    async def load_turns(self, user_id: str, channel_id: str) -> list[Turn]: ...

    async def save_turns(self, user_id: str, channel_id: str, turns: list[Turn]) -> None: ...

    async def find_turn(self, user_id: str, channel_id: str, turn_id: str) -> Turn | None: ...

    async def clear(self, user_id: str, channel_id: str) -> bool: ...

    async def get_model(self, user_id: str) -> str | None: ...

    async def set_model(self, user_id: str, model: str) -> None: ...

    async def record_usage(self, record: UsageRecord) -> None: ...

    async def usage_totals(self, user_id: str) -> list[UsageTotal]: ...

    async def daily_usage(self, user_id: str, day: str) -> DailyAmounts: ...

    async def add_daily(
        self, user_id: str, day: str, add: DailyAmounts, limits: DailyLimits | None
    ) -> DailyAmounts | None:
        """Atomically add `add` to the user's day (`YYYY-MM-DD`, UTC) if it `fits` the limits
        (None: always); the new totals, or None when nothing was added."""
        ...

    async def ping(self) -> None: ...


class MemoryChatRecords:
    """Kept in this process only: `python -m app chat` without MONGODB_URI, and tests."""

    persistent = False

    def __init__(self) -> None:
        self._turns: dict[tuple[str, str], list[Turn]] = {}
        self._models: dict[str, str] = {}
        self._usage: dict[str, list[UsageRecord]] = defaultdict(list)
        self._daily: dict[tuple[str, str], DailyAmounts] = {}

    async def load_turns(self, user_id: str, channel_id: str) -> list[Turn]:
        return [turn.copy() for turn in self._turns.get((user_id, channel_id), [])]

    async def save_turns(self, user_id: str, channel_id: str, turns: list[Turn]) -> None:
        self._turns[(user_id, channel_id)] = [turn.copy() for turn in turns]

    async def find_turn(self, user_id: str, channel_id: str, turn_id: str) -> Turn | None:
        return find_turn(self._turns.get((user_id, channel_id), []), turn_id)

    async def clear(self, user_id: str, channel_id: str) -> bool:
        return self._turns.pop((user_id, channel_id), None) is not None

    async def get_model(self, user_id: str) -> str | None:
        return self._models.get(user_id)

    async def set_model(self, user_id: str, model: str) -> None:
        self._models[user_id] = model

    async def record_usage(self, record: UsageRecord) -> None:
        self._usage[record.user_id].append(record)

    async def usage_totals(self, user_id: str) -> list[UsageTotal]:
        totals: dict[str, UsageTotal] = {}
        for record in self._usage.get(user_id, []):
            totals.setdefault(record.model, UsageTotal(record.model)).add(
                record.prompt_tokens,
                record.completion_tokens,
                record.cost,
                cached=record.cached_tokens,
            )
        return sorted(totals.values(), key=lambda t: t.model)

    async def daily_usage(self, user_id: str, day: str) -> DailyAmounts:
        return self._daily.get((user_id, day), DailyAmounts())

    async def add_daily(
        self, user_id: str, day: str, add: DailyAmounts, limits: DailyLimits | None
    ) -> DailyAmounts | None:
        # No await between the check and the add: atomic on the event loop.
        used = self._daily.get((user_id, day), DailyAmounts())
        if not fits(used, add, limits):
            return None
        total = DailyAmounts(
            used.tokens + add.tokens, used.cost + add.cost, used.seconds + add.seconds
        )
        self._daily[(user_id, day)] = total
        return total

    async def ping(self) -> None:
        return None


def find_turn(turns: list[Turn], turn_id: str) -> Turn | None:
    if not turn_id:
        return None
    return next((turn.copy() for turn in turns if turn.id == turn_id), None)
