"""Conversations, model choices, usage and budgets in the embedded SQLite database (no
MONGODB_URI): tables conversations (turns as JSON), preferences, usage and daily_usage."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from app.chat.records import (
    DailyAmounts,
    DailyLimits,
    RecordsUnavailable,
    Turn,
    UsageRecord,
    UsageTotal,
    find_turn,
    fits,
)
from app.database import DatabaseUnavailable, EmbeddedDatabase


class SqliteChatRecords:
    persistent = True

    def __init__(self, database: EmbeddedDatabase) -> None:
        self.database = database

    async def ping(self) -> None:
        await self._run(lambda db: None)

    async def load_turns(self, user_id: str, channel_id: str) -> list[Turn]:
        def load(db: sqlite3.Connection) -> list[Turn]:
            row = db.execute(
                "SELECT turns FROM conversations WHERE user_id = ? AND channel_id = ?",
                (user_id, channel_id),
            ).fetchone()
            return [Turn.from_doc(turn) for turn in json.loads(row[0])] if row else []

        return await self._run(load)

    async def save_turns(self, user_id: str, channel_id: str, turns: list[Turn]) -> None:
        encoded = json.dumps([turn.to_doc() for turn in turns], ensure_ascii=False)
        now = datetime.now(UTC).isoformat()
        await self._run(
            lambda db: db.execute(
                "INSERT INTO conversations (user_id, channel_id, turns, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, channel_id) "
                "DO UPDATE SET turns = excluded.turns, updated_at = excluded.updated_at",
                (user_id, channel_id, encoded, now),
            )
        )

    async def find_turn(self, user_id: str, channel_id: str, turn_id: str) -> Turn | None:
        # One conversation row is at most MAX_SAVED_TURNS turns: read it and look.
        return find_turn(await self.load_turns(user_id, channel_id), turn_id)

    async def clear(self, user_id: str, channel_id: str) -> bool:
        def clear(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM conversations WHERE user_id = ? AND channel_id = ?",
                (user_id, channel_id),
            )
            return cursor.rowcount > 0

        return await self._run(clear)

    async def get_model(self, user_id: str) -> str | None:
        def get(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT model FROM preferences WHERE user_id = ?", (user_id,))
            found = row.fetchone()
            return found[0] if found else None

        return await self._run(get)

    async def set_model(self, user_id: str, model: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO preferences (user_id, model) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET model = excluded.model",
                (user_id, model),
            )
        )

    async def record_usage(self, record: UsageRecord) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO usage (user_id, model, prompt_tokens, completion_tokens, "
                "cached_tokens, cost, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.user_id,
                    record.model,
                    record.prompt_tokens,
                    record.completion_tokens,
                    record.cached_tokens,
                    record.cost,
                    record.at.astimezone(UTC).isoformat(),
                ),
            )
        )

    async def usage_totals(self, user_id: str) -> list[UsageTotal]:
        def totals(db: sqlite3.Connection) -> list[UsageTotal]:
            # A null cost (unknown price) must stay unknown: count them apart from the sum.
            rows = db.execute(
                "SELECT model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), "
                "SUM(cached_tokens), SUM(cost), COUNT(*) - COUNT(cost) FROM usage "
                "WHERE user_id = ? GROUP BY model ORDER BY model",
                (user_id,),
            ).fetchall()
            return [
                UsageTotal(
                    model=model,
                    requests=requests,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost=None if unknown else (cost or 0.0),
                    cached_tokens=cached,
                )
                for model, requests, prompt, completion, cached, cost, unknown in rows
            ]

        return await self._run(totals)

    async def daily_usage(self, user_id: str, day: str) -> DailyAmounts:
        return await self._run(lambda db: _daily(db, user_id, day))

    async def add_daily(
        self, user_id: str, day: str, add: DailyAmounts, limits: DailyLimits | None
    ) -> DailyAmounts | None:
        def add_if_it_fits(db: sqlite3.Connection) -> DailyAmounts | None:
            # One BEGIN IMMEDIATE transaction: no other writer between the check and the add.
            used = _daily(db, user_id, day)
            if not fits(used, add, limits):
                return None
            db.execute(
                "INSERT INTO daily_usage (user_id, day, tokens, cost, seconds) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, day) DO UPDATE SET "
                "tokens = tokens + excluded.tokens, cost = cost + excluded.cost, "
                "seconds = seconds + excluded.seconds",
                (user_id, day, add.tokens, add.cost, add.seconds),
            )
            return _daily(db, user_id, day)

        return await self._run(add_if_it_fits)

    async def _run(self, work):
        try:
            return await self.database.run(work)
        except DatabaseUnavailable as exc:
            raise RecordsUnavailable(str(exc)) from None


def _daily(db: sqlite3.Connection, user_id: str, day: str) -> DailyAmounts:
    row = db.execute(
        "SELECT tokens, cost, seconds FROM daily_usage WHERE user_id = ? AND day = ?",
        (user_id, day),
    ).fetchone()
    return DailyAmounts(int(row[0]), float(row[1]), float(row[2])) if row else DailyAmounts()
