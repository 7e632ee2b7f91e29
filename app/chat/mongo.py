"""MongoDB storage of conversations, model choices, usage and budgets: the only motor user in
app/chat. Daily budgets are one document per (user, UTC day) in `daily_usage`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo import ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from app.chat.records import (
    DailyAmounts,
    DailyLimits,
    RecordsUnavailable,
    Turn,
    UsageRecord,
    UsageTotal,
    find_turn,
)

F = TypeVar("F", bound=Callable[..., Any])


def _translated(method: F) -> F:
    """Driver failures become RecordsUnavailable with a reason a user can act on (never the
    URI): the chat tells the user what was not saved instead of failing the turn."""

    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except PyMongoError as exc:
            if isinstance(exc, ConnectionFailure):  # AutoReconnect, server selection timeouts
                reason = "MongoDB is unreachable"
            else:
                reason = f"MongoDB refused it ({type(exc).__name__})"
            raise RecordsUnavailable(reason) from None

    return wrapper  # type: ignore[return-value]


class MongoChatRecords:
    persistent = True

    def __init__(self, database: AsyncIOMotorDatabase) -> None:
        self.db = database
        self.conversations = database["conversations"]
        self.preferences = database["preferences"]
        self.usage = database["usage"]
        self.daily = database["daily_usage"]

    @classmethod
    def connect(cls, uri: str, database: str, timeout_ms: int = 5000) -> MongoChatRecords:
        client: AsyncIOMotorClient = AsyncIOMotorClient(
            uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True
        )
        return cls(client[database])

    async def ping(self) -> None:
        try:
            await self.db.command("ping")
        except PyMongoError as exc:
            raise RecordsUnavailable(f"MongoDB unreachable: {type(exc).__name__}") from None

    @_translated
    async def ensure_indexes(self) -> None:
        await self.conversations.create_index([("user_id", 1), ("channel_id", 1)], unique=True)
        await self.usage.create_index([("user_id", 1), ("model", 1)])
        await self.daily.create_index([("user_id", 1), ("day", 1)], unique=True)

    @_translated
    async def load_turns(self, user_id: str, channel_id: str) -> list[Turn]:
        doc = await self.conversations.find_one({"user_id": user_id, "channel_id": channel_id})
        return [Turn.from_doc(turn) for turn in doc.get("turns", [])] if doc else []

    @_translated
    async def save_turns(self, user_id: str, channel_id: str, turns: list[Turn]) -> None:
        await self.conversations.update_one(
            {"user_id": user_id, "channel_id": channel_id},
            {
                "$set": {
                    "turns": [turn.to_doc() for turn in turns],
                    "updated_at": datetime.now(UTC),
                }
            },
            upsert=True,
        )

    async def find_turn(self, user_id: str, channel_id: str, turn_id: str) -> Turn | None:
        # One conversation document is at most MAX_SAVED_TURNS turns: read it and look.
        return find_turn(await self.load_turns(user_id, channel_id), turn_id)

    @_translated
    async def clear(self, user_id: str, channel_id: str) -> bool:
        result = await self.conversations.delete_one({"user_id": user_id, "channel_id": channel_id})
        return result.deleted_count > 0

    @_translated
    async def get_model(self, user_id: str) -> str | None:
        doc = await self.preferences.find_one({"user_id": user_id})
        return doc.get("model") if doc else None

    @_translated
    async def set_model(self, user_id: str, model: str) -> None:
        await self.preferences.update_one(
            {"user_id": user_id}, {"$set": {"model": model}}, upsert=True
        )

    @_translated
    async def record_usage(self, record: UsageRecord) -> None:
        await self.usage.insert_one(
            {
                "user_id": record.user_id,
                "model": record.model,
                "prompt_tokens": record.prompt_tokens,
                "completion_tokens": record.completion_tokens,
                "cached_tokens": record.cached_tokens,
                "cost": record.cost,
                "at": record.at,
            }
        )

    @_translated
    async def usage_totals(self, user_id: str) -> list[UsageTotal]:
        # Summed here rather than with $group: a null cost (unknown price) must stay unknown.
        totals: dict[str, UsageTotal] = {}
        async for doc in self.usage.find({"user_id": user_id}):
            totals.setdefault(doc["model"], UsageTotal(doc["model"])).add(
                doc.get("prompt_tokens", 0),
                doc.get("completion_tokens", 0),
                doc.get("cost"),
                cached=doc.get("cached_tokens", 0),
            )
        return sorted(totals.values(), key=lambda t: t.model)

    @_translated
    async def daily_usage(self, user_id: str, day: str) -> DailyAmounts:
        return _amounts(await self.daily.find_one({"user_id": user_id, "day": day}))

    @_translated
    async def add_daily(
        self, user_id: str, day: str, add: DailyAmounts, limits: DailyLimits | None
    ) -> DailyAmounts | None:
        key = {"user_id": user_id, "day": day}
        try:  # the day's document exists first, so the conditional update below never upserts
            await self.daily.update_one(
                key, {"$setOnInsert": {"tokens": 0, "cost": 0.0, "seconds": 0.0}}, upsert=True
            )
        except DuplicateKeyError:
            pass  # a concurrent turn created it
        condition: dict[str, object] = dict(key)
        for kind in ("tokens", "cost", "seconds"):
            limit, amount = getattr(limits, kind, None), getattr(add, kind)
            if limit is not None and amount > 0:
                if amount > limit:
                    return None
                condition[kind] = {"$lte": limit - amount}
        # The check and the add are one atomic document update: concurrent reservations of one
        # user (in this process or another) can never together pass the limit.
        document = await self.daily.find_one_and_update(
            condition,
            {"$inc": {"tokens": add.tokens, "cost": add.cost, "seconds": add.seconds}},
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else _amounts(document)


def _amounts(document: dict | None) -> DailyAmounts:
    if not document:
        return DailyAmounts()
    return DailyAmounts(
        int(document.get("tokens", 0)),
        float(document.get("cost", 0.0)),
        float(document.get("seconds", 0.0)),
    )
